"""A restic repository as syncer uses it: each operation is an argv builder plus the
one runner, with the stale-lock retry and the output parsing in one place."""

import json
import logging
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from syncer.errors import UsageError
from syncer.policy.credentials import check_credentials_file, credentials_error, read_credentials
from syncer.process import process_alive
from syncer.restic import argv as build
from syncer.restic.runner import RepositoryLocked, ResticContext, ResticFailed, run_restic, supports

log = logging.getLogger("syncer.restic")
INCLUDES_PER_RUN = 500  # keeps argv well below the kernel's limit when --include-file is missing
CHECK_FOUND_ERRORS = re.compile(r"repository contains errors", re.I)
# restic 0.14's check names a damaged pack in these messages (0.18's check --json lists them).
BROKEN_PACK = re.compile(r"(?:pack id does not match, want|pack) ([0-9a-f]{64})", re.I)
# How long unattended commands wait for a lock another run holds (restic 0.16+).
LOCK_WAIT = "2m"


def build_context(policy, state_dir):
    """Return the ResticContext of `policy`'s offsite section.

    Raise UsageError if the policy has none; OperationalError if the password file or
    env file is missing, CredentialError if it is readable by others.
    """
    offsite = policy.offsite
    if offsite is None:
        raise UsageError(f"dataset {policy.name} has no offsite section in {policy.file_label}")
    return repository_context(offsite.repository, offsite.password_file, offsite.env_file, state_dir,
                              f"{policy.file_label}: offsite", binary=policy.restic_binary, timeout=offsite.timeout)


def repository_context(repository, password_file, env_file, state_dir, label, password_label=None,
                       binary="restic", timeout=None):
    """Return the ResticContext of `repository` opened with `password_file` (and the
    KEY=VALUE `env_file`, if any); `label` names where they were given, for messages
    (`password_label` where the password file was, default <label>.password_file).
    Raise OperationalError if a file is missing, CredentialError if it is readable by others."""
    problem = check_credentials_file(Path(password_file))
    if problem:
        problem = problem.replace("credentials file", "file")
        raise credentials_error(password_file, f"{password_label or label + '.password_file'}: {problem}")
    env = read_credentials(Path(env_file)) if env_file else {}
    return ResticContext(repository=repository, password_file=Path(password_file),
                         cache_dir=Path(state_dir) / "restic-cache", env=env, binary=binary, label=label,
                         timeout=timeout)


@dataclass
class BackupResult:
    summary: dict
    unreadable: list  # [(path, reason)] restic could not read (exit 3)

    @property
    def skipped(self):
        """Nothing changed and --skip-if-unchanged made no snapshot."""
        return not self.summary.get("snapshot_id")


@dataclass
class CheckResult:
    ok: bool  # False when restic found errors in the repository
    lines: list  # what restic said
    broken_packs: list  # the IDs of the damaged pack files it named


def broken_packs_of(messages, lines):
    """Return the damaged pack IDs restic named: check --json's summary (0.18), else its
    messages (0.14: "Pack ID does not match, want <id>", "pack <id> contains ...")."""
    for message in messages or []:
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return sorted(set(message.get("broken_packs") or []))
    return sorted({match.group(1) for line in lines for match in BROKEN_PACK.finditer(line)})


def restore_summary(result):
    """Return restore --json's summary (files and bytes restored; restic 0.17+), or None."""
    for message in reversed(result.messages if result else []):
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return {key: message.get(key) for key in ("files_restored", "total_files", "bytes_restored",
                                                      "total_bytes", "files_skipped", "seconds_elapsed")
                    if key in message}
    return None


def parse_backup_summary(messages):
    """Return the "summary" message of `backup --json` output. Raise ResticFailed if
    there is none (restic ended without saying what it stored)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return message
    raise ResticFailed("restic backup ended without a summary")


def unreadable_files(errors, stderr_lines):
    """Return [(path, reason)] of the files restic reported it could not read, from its
    JSON error messages, or from 0.14's text lines ("error: open /x: permission denied")."""
    from syncer.restic.runner import describe_error

    found = [(error.get("item") or "?", describe_error(error)) for error in errors]
    for line in stderr_lines:
        match = re.match(r"error: (?:\w+ )?(/[^:]+): (.+)$", line.strip())
        if match:
            found.append((match.group(1), match.group(2)))
    return found


RESTORING = re.compile(r"restoring <Snapshot ([0-9a-f]+) of \[(.*)\] at ", re.S)


def parse_restoring_line(stdout):
    """Return (short ID, text inside [...]) from restic restore's first line:
    "restoring <Snapshot 16d35f7d of [/srv/a /var/m] at 2026-... by u@h> to /t"."""
    match = RESTORING.search(stdout or "")
    return (match.group(1), match.group(2)) if match else (None, None)


def snapshot_time_key(snapshot):
    return snapshot.get("time", "")


class ResticRepository:
    """One restic repository, reached through the one runner."""

    def __init__(self, context):
        self.context = context
        self.peak_rss = 0  # the largest peak resident memory of restic's runs so far, bytes

    def run(self, arguments, wait_for_lock=False, **options):
        """Run restic; if a lock is in the way, clear locks left by dead processes with
        `restic unlock` (never --remove-all) and try once more. With `wait_for_lock`
        (unattended commands), restic 0.16+ first waits LOCK_WAIT for a live lock."""
        if wait_for_lock and supports("retry_lock", self.context.binary):
            arguments = build.with_retry_lock(arguments, LOCK_WAIT)
        try:
            result = run_restic(self.context, arguments, **options)
        except RepositoryLocked as error:
            log.warning("%s; running `restic unlock` to clear locks of dead processes, then retrying once", error)
            run_restic(self.context, build.unlock_argv())
            result = run_restic(self.context, arguments, **options)
        self.peak_rss = max(self.peak_rss, result.peak_rss)
        return result

    def init(self):
        self.run(build.init_argv())

    def unlock(self):
        """Remove stale locks: restic's own test (this host and a dead PID, or not
        refreshed for 30 minutes), never --remove-all, which would break a live run."""
        run_restic(self.context, build.unlock_argv())

    def locks(self):
        """Return the repository's locks as restic shows them ({"id", "time",
        "exclusive", "hostname", "pid", ...}). A lock removed while listed is left out."""
        found = []
        for lock_id in run_restic(self.context, build.list_locks_argv()).stdout.split():
            try:
                shown = json.loads(run_restic(self.context, build.cat_lock_argv(lock_id)).stdout)
            except (ResticFailed, ValueError):
                continue  # its owner removed it meanwhile
            if isinstance(shown, dict):
                found.append(dict(shown, id=lock_id))
        return found

    def dead_local_locks(self):
        """Return the locks held by this host for a process that no longer runs: what a
        killed restic leaves behind, and what blocks the next check or prune."""
        host = socket.gethostname()
        return [lock for lock in self.locks()
                if lock.get("hostname") == host and isinstance(lock.get("pid"), int) and not process_alive(lock["pid"])]

    def backup(self, paths, tag, host, excludes=(), on_status=None, skip_if_unchanged=False):
        """Back up `paths` in one snapshot. Return BackupResult; unreadable files (exit 3)
        are listed, not hidden. With `skip_if_unchanged`, restic 0.17+ makes no snapshot
        when nothing changed (older ones make one anyway)."""
        skip = skip_if_unchanged and supports("skip_if_unchanged", self.context.binary)
        result = self.run(build.backup_argv(paths, tag, host, excludes, skip), json_output=True,
                          on_status=on_status, wait_for_lock=True)
        return BackupResult(parse_backup_summary(result.messages),
                            unreadable_files(result.errors, result.stderr) if result.partial else [])

    def snapshots(self, tag=None, host=None, no_lock=False):
        """Return the snapshots (restic's JSON objects) with `tag` and `host`, oldest first.
        With `no_lock`, nothing is written to the repository."""
        result = self.run(build.snapshots_argv(tag, host, no_lock), json_output=True)
        listed = result.messages[0] if result.messages and isinstance(result.messages[0], list) else []
        return sorted(listed, key=snapshot_time_key)

    def forget(self, tag, host, retention):
        """Apply `retention` to the snapshots with `tag` and `host`. Return (kept, removed)
        as lists of snapshot objects."""
        result = self.run(build.forget_argv(tag, host, retention), json_output=True, wait_for_lock=True)
        kept, removed = [], []
        for groups in result.messages:
            for group in groups if isinstance(groups, list) else [groups]:
                kept += group.get("keep") or []
                removed += group.get("remove") or []
        return kept, removed

    def prune(self):
        self.run(build.prune_argv(), wait_for_lock=True)

    def check(self, read_data_subset=None):
        """Run `restic check`. Return a CheckResult: ok is False when restic found errors
        in the repository, with the damaged packs it named; other failures raise."""
        json_output = supports("check_json", self.context.binary)
        try:
            result = self.run(build.check_argv(read_data_subset, json_output), wait_for_lock=True,
                              json_output=json_output)
        except ResticFailed as error:
            if CHECK_FOUND_ERRORS.search(str(error)):
                lines = [str(error)]
                return CheckResult(False, lines, broken_packs_of(getattr(error, "messages", None),
                                                                 getattr(error, "stderr", [])))
            raise
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        return CheckResult(True, lines, broken_packs_of(result.messages, lines + result.stderr))

    def restore(self, snapshot_id, target, includes=()):
        """Restore `snapshot_id` below `target`, limited to restic `includes` patterns.
        Uses --include-file on restic versions that have it, else runs in batches."""
        includes = list(includes)
        json_output = supports("restore_json", self.context.binary)
        if includes and supports("restore_include_file", self.context.binary):
            with tempfile.NamedTemporaryFile("w", suffix=".include", encoding="utf-8") as listing:
                listing.write("".join(pattern + "\n" for pattern in includes))
                listing.flush()
                return self.run(build.restore_argv(snapshot_id, target, include_file=listing.name,
                                                   json_output=json_output), json_output=json_output)
        batches = [includes[start:start + INCLUDES_PER_RUN] for start in range(0, len(includes), INCLUDES_PER_RUN)]
        result = None
        for batch in batches or [[]]:
            result = self.run(build.restore_argv(snapshot_id, target, batch, json_output=json_output),
                              json_output=json_output)
        return result

    def restore_latest(self, tag, host, target):
        """Restore the newest snapshot with `tag` and `host`, whole, below `target`, in
        one restic run. Return (short ID, the text listing its paths) from restic's
        "restoring <Snapshot ...>" line, or (None, None) if restic printed none. A
        ResticFailed for damaged data is raised after the files it could write."""
        json_output = supports("restore_json", self.context.binary)
        result = self.run(build.restore_argv("latest", target, json_output=json_output, tag=tag, host=host))
        return parse_restoring_line(result.stdout)

    def cached_snapshot_id(self, short_id):
        """Return the full ID of snapshot `short_id` from restic's local cache (which
        keeps a copy of every snapshot file it listed), else from `restic snapshots`."""
        cache = Path(self.context.cache_dir)
        found = {path.name for pattern in (f"*/snapshots/{short_id[:2]}/{short_id}*", f"*/snapshots/{short_id}*")
                 for path in cache.glob(pattern) if len(path.name) == 64}
        if len(found) == 1:
            return found.pop()
        ids = [snapshot["id"] for snapshot in self.snapshots() if snapshot["id"].startswith(short_id)]
        return ids[0] if len(ids) == 1 else short_id

    def dump_folder(self, snapshot_id, path, destination):
        """Write the regular files below the folder `path` of `snapshot_id` into the local
        folder `destination`, keeping their relative paths (restic dumps a folder as a tar
        archive, spooled to a temporary file). Return their relative paths."""
        import tarfile

        prefix = path.strip("/") + "/"
        written = []
        with tempfile.TemporaryFile() as archive:
            self.run(build.dump_argv(snapshot_id, path), stdout_file=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive, mode="r:") as tar:
                for member in tar:
                    relative = member.name[len(prefix):] if member.name.startswith(prefix) else ""
                    parts = relative.split("/")
                    if not member.isreg() or not relative or any(part in ("", ".", "..") for part in parts):
                        continue
                    local = Path(destination, *parts)
                    local.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as source, open(local, "wb") as handle:
                        shutil.copyfileobj(source, handle, 1 << 20)
                    written.append(relative)
        return written

    def dump(self, snapshot_id, path, destination):
        """Write the file `path` of `snapshot_id` to the local file `destination`."""
        with open(destination, "wb") as handle:
            self.run(build.dump_argv(snapshot_id, path), stdout_file=handle)
