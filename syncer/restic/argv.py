"""Pure functions that build restic's argv. No secrets ever go here: the password
travels in RESTIC_PASSWORD_FILE and the repository in RESTIC_REPOSITORY."""

RETENTION_FLAGS = {
    "keep_last": "--keep-last",
    "keep_hourly": "--keep-hourly",
    "keep_daily": "--keep-daily",
    "keep_weekly": "--keep-weekly",
    "keep_monthly": "--keep-monthly",
    "keep_yearly": "--keep-yearly",
    "keep_within": "--keep-within",
}
GLOB_SPECIALS = "\\*?["


def dataset_tag(dataset):
    """The tag every snapshot of `dataset` carries."""
    return f"syncer:{dataset}"


def restic_excludes(root, patterns):
    """Translate syncer's exclude globs (relative to the dataset `root`) into restic's.

    A pattern without "/" matches a name at any depth in both; a pattern with "/" is
    relative to the dataset in syncer but would float in restic, so it is anchored at
    the dataset's absolute path, whose own glob characters (`/srv/ph[2024]`) are
    escaped so that they match themselves.
    """
    root = escape_glob(str(root).rstrip("/"))
    translated = []
    for pattern in patterns:
        pattern = pattern.strip()
        trimmed = pattern.rstrip("/")
        if "/" in trimmed:
            translated.append(f"{root}/{trimmed.lstrip('/')}")
        else:
            translated.append(trimmed)
    return translated


def escape_glob(path):
    """Escape restic's (Go filepath.Match) pattern characters so `path` matches itself."""
    return "".join("\\" + char if char in GLOB_SPECIALS else char for char in path)


def init_argv():
    return ["init"]


def unlock_argv():
    """Remove stale locks only: never --remove-all, which would break a live run."""
    return ["unlock"]


def list_locks_argv():
    """The IDs of the locks in the repository; listing takes no lock itself."""
    return ["list", "locks", "--no-lock"]


def cat_lock_argv(lock_id):
    """One lock as JSON: time, exclusive, hostname, username, pid."""
    return ["cat", "lock", lock_id, "--no-lock"]


def backup_argv(paths, tag, host, excludes=(), skip_if_unchanged=False):
    """Back `paths` up in one snapshot; with `skip_if_unchanged` (restic 0.17+) none is
    made when nothing changed since the parent snapshot."""
    argv = ["backup", "--json", "--tag", tag, "--host", host]
    if skip_if_unchanged:
        argv.append("--skip-if-unchanged")
    for pattern in excludes:
        argv += ["--exclude", pattern]
    return argv + ["--"] + [str(path) for path in paths]


def snapshots_argv(tag=None, host=None, no_lock=False):
    """With `no_lock`, restic leaves no lock file behind: a look that writes nothing."""
    argv = ["snapshots", "--json"] + (["--no-lock"] if no_lock else [])
    if tag:
        argv += ["--tag", tag]
    if host:
        argv += ["--host", host]
    return argv


def forget_argv(tag, host, retention):
    """Forget this dataset's snapshots (its tag and host only) beyond `retention`.
    Groups by host and tags, not paths, so a moved state or dataset directory does not
    start a second history."""
    argv = ["forget", "--json", "--tag", tag, "--host", host, "--group-by", "host,tags"]
    for key, value in sorted(retention.items()):
        argv += [RETENTION_FLAGS[key], str(value)]
    return argv


def prune_argv():
    return ["prune"]


def check_argv(read_data_subset=None, json_output=False):
    argv = ["check"]
    if read_data_subset:
        argv += ["--read-data-subset", read_data_subset]
    if json_output:
        argv.append("--json")
    return argv


def with_retry_lock(argv, wait):
    """`argv` that waits up to `wait` (restic 0.16+'s --retry-lock, like "2m") for a
    lock held by another run, before any "--" that ends the options."""
    split = argv.index("--") if "--" in argv else len(argv)
    return argv[:split] + ["--retry-lock", wait] + argv[split:]


def restore_argv(snapshot_id, target, includes=(), include_file=None, json_output=False, tag=None, host=None):
    """Restore `snapshot_id` below `target`. `includes` are restic patterns on the
    snapshot's absolute paths; `include_file` (newer restic) holds them one a line.
    `tag` and `host` choose among snapshots when the ID is "latest"."""
    argv = ["restore", snapshot_id, "--target", str(target)]
    if tag:
        argv += ["--tag", tag]
    if host:
        argv += ["--host", host]
    if json_output:
        argv.append("--json")
    if include_file:
        argv += ["--include-file", str(include_file)]
    for pattern in includes:
        argv += ["--include", pattern]
    return argv


def copy_argv(tag, host):
    """Copy every snapshot of one dataset (its tag and host) that the destination lacks
    yet: restic copy skips the ones it already copied, so a copy that failed once
    catches up at the next push. The source travels in copy_source_environment."""
    return ["copy", "--tag", tag, "--host", host]


def init_copy_argv():
    """Create a copy repository with the source's chunker parameters, so files
    deduplicate across both (restic's --copy-chunker-params)."""
    return ["init", "--copy-chunker-params"]


def copy_source_environment(repository, password_file, from_repo):
    """The environment naming the source repository of `restic copy` and `init
    --copy-chunker-params`: RESTIC_FROM_REPOSITORY and RESTIC_FROM_PASSWORD_FILE from
    restic 0.14 on (`from_repo`, versions "copy_from_repo"), RESTIC_REPOSITORY2 and
    RESTIC_PASSWORD_FILE2 before. Never argv: an address may hold a password."""
    if from_repo:
        return {"RESTIC_FROM_REPOSITORY": repository, "RESTIC_FROM_PASSWORD_FILE": str(password_file)}
    return {"RESTIC_REPOSITORY2": repository, "RESTIC_PASSWORD_FILE2": str(password_file)}


def dump_argv(snapshot_id, path):
    return ["dump", snapshot_id, str(path)]


def parse_s3_repository(repository):
    """Split a restic `s3:` repository address into (endpoint_url, bucket, prefix), or
    return None for any other backend. "s3:host/bucket/prefix" means https."""
    if not repository.startswith("s3:"):
        return None
    address = repository[3:]
    scheme = "https"
    if "://" in address:
        scheme, address = address.split("://", 1)
    host, _, path = address.partition("/")
    bucket, _, prefix = path.strip("/").partition("/")
    if not host or not bucket:
        return None
    return f"{scheme}://{host}", bucket, prefix
