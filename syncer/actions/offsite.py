"""What the offsite actions share: the repository of a policy, the dataset's
snapshots, and the checksum manifest every snapshot carries.

The manifest is JSON lines: a header {"syncer_manifest": 1, "dataset", "root"}, then
one {"path", "size", "mtime_ns", "md5", "sha256"} per indexed file, in path order. It
is backed up beside the data, so a laptop with only the repository's address and
password can check a restore. It lives in <manifest root>/manifests/<dataset>/, the
same on every board whatever its state directory (restic finds the parent snapshot by
its paths), and holds nothing that changes unless the dataset does: an unchanged
dataset is an unchanged snapshot.

Beside it, in policy/, push keeps the dataset's policy file as written and the
policies folder's syncer.yaml, so `syncer recover` can rebuild a board from the
repository alone. Credentials files are named there, never copied.
"""

import json
import logging
import os
import time
from pathlib import Path

from syncer.errors import OperationalError, UsageError
from syncer.index.db import default_state_dir
from syncer.index.hashing import HashPool
from syncer.index.manifest import ManifestStore
from syncer.index.runs import close_killed, killed_runs
from syncer.log import mask
from syncer.policy.load import GLOBAL_FILE_NAMES
from syncer.process import process_exists
from syncer.restic.argv import dataset_tag
from syncer.restic.repository import ResticRepository, build_context
from syncer.restic.runner import RepositoryMissing, mask_url
from syncer.verdict import CHANGED, EXTRA_LOCAL, OK, UNVERIFIABLE, Copy, judge

MANIFEST_NAME = "syncer-manifest.jsonl"
MANIFEST_STORE_NAME = "syncer-manifest.sqlite"  # a fetched manifest, indexed by path (ManifestStore)
SYSTEM_MANIFEST_ROOT = Path("/var/lib/syncer-offsite")
MANIFEST_VERSION = 1
POLICY_FOLDER = "policy"  # beside the manifest: the policy file and syncer.yaml
# The actions that run restic, so that one killed may have left a lock in the repository.
RESTIC_ACTIONS = ("push", "prune", "check", "restore", "drill")
REAP_WAIT_SECONDS = 10
log = logging.getLogger("syncer.offsite")


def require_offsite(policy):
    if policy.offsite is None:
        raise UsageError(f"dataset {policy.name} has no offsite section in {policy.file_label}")


def open_repository(policy, state_dir):
    """Return the ResticRepository of `policy`. Raise UsageError/CredentialError as
    build_context does."""
    return ResticRepository(build_context(policy, state_dir))


def repository_key(policy):
    """The address of `policy`'s repository as the state database keeps it (no embedded
    credentials)."""
    return mask_url(policy.offsite.repository)


def clear_stale_locks(repository, db, dataset):
    """Before working on `repository`: when a run of `dataset` was killed before it
    could record its end, or the repository holds a lock of this host whose process is
    gone, run `restic unlock` (stale locks only, never --remove-all). A lock left by a
    killed restic does not stop the next backup, but it stops every later check and
    prune, syncer's own and a user's. A repository that does not exist yet has none."""
    killed = killed_runs(db, dataset, RESTIC_ACTIONS)
    try:
        dead = repository.dead_local_locks()
    except RepositoryMissing:
        return
    if not killed and not dead:
        log.debug("%s: no stale lock of this host in %s", dataset, repository.context.display)
        return
    if killed:
        log.warning("%s: an earlier %s was killed before it finished", dataset,
                    " and ".join(sorted({run["action"] for run in killed})))
    if dead:
        log.warning("%s: %s holds a lock of this host whose restic is gone (%s)", dataset,
                    repository.context.display,
                    ", ".join(f"PID {lock['pid']} since {str(lock.get('time', '?'))[:19]}" for lock in dead))
        # restic tells a dead holder by signalling its PID, which a killed restic not yet
        # reaped by its new parent still answers: give the reaper a moment.
        wait_until_reaped([lock["pid"] for lock in dead])
    log.warning("%s: clearing stale locks in %s (restic unlock)", dataset, repository.context.display)
    repository.unlock()
    close_killed(db, killed, "killed before it finished (no record of its end); the next run cleared the stale "
                             "restic locks")


def wait_until_reaped(pids, seconds=REAP_WAIT_SECONDS):
    """Wait up to `seconds` until none of `pids` is left, not even as a zombie."""
    deadline = time.monotonic() + seconds
    while any(process_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def default_manifest_root():
    """/var/lib/syncer-offsite for root, else beside the XDG state directory: never
    inside a state directory, whose every run (the database's journal) would change a
    folder above the manifest and so every snapshot's tree."""
    return SYSTEM_MANIFEST_ROOT if os.geteuid() == 0 else default_state_dir().parent / "syncer-offsite"


def manifest_directory(policy):
    """The folder push backs up with `policy`'s dataset: its offsite.manifest_root (or
    the default one) /manifests/<dataset>, whatever the state directory."""
    root = policy.offsite.manifest_root or default_manifest_root()
    return Path(root).absolute() / "manifests" / policy.name


def manifest_lines(db, policy, totals):
    """Yield the manifest of `policy`'s dataset from the index, line by line, counting
    files and bytes into `totals` (a two-item list)."""
    header = {"syncer_manifest": MANIFEST_VERSION, "dataset": policy.name, "root": str(policy.path)}
    yield json.dumps(header, ensure_ascii=False) + "\n"
    for relative, size, mtime_ns, md5, sha256 in db.iterate_files(policy.name):
        totals[0] += 1
        totals[1] += size or 0
        entry = {"path": relative, "size": size, "mtime_ns": mtime_ns, "md5": md5, "sha256": sha256}
        yield json.dumps(entry, ensure_ascii=False) + "\n"


def holds_lines(path, lines):
    """Return whether the file at `path` holds exactly `lines` (consumed as it goes)."""
    try:
        with open(path, "rb") as handle:
            for line in lines:
                data = line.encode("utf-8")
                if handle.read(len(data)) != data:
                    return False
            return handle.read(1) == b""
    except FileNotFoundError:
        return False


def write_manifest(db, policy, directory):
    """Write the manifest of `policy`'s dataset from the index into `directory`
    (atomically), unless the file there already holds it: then it is left untouched
    (inode, times and folder), so restic sees nothing changed. Return (path, files,
    bytes)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / MANIFEST_NAME
    totals = [0, 0]

    def lines():
        totals[:] = [0, 0]
        return manifest_lines(db, policy, totals)

    write_unless_held(path, lines)
    return path, totals[0], totals[1]


def write_unless_held(path, lines):
    """Write the text lines that `lines()` yields as the file `path` (atomically: a
    .partial beside it, fsynced, renamed), unless the file holds them already: then it
    is left untouched, so restic sees nothing changed. `lines` is called once or twice."""
    if holds_lines(path, lines()):
        return
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.writelines(lines())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def write_policy_copy(policy, directory):
    """Keep `policy`'s file as written, and its folder's syncer.yaml, in
    `directory`/policy/, leaving unchanged files untouched (an unchanged snapshot).
    A value syncer knows as a secret (a notify URL written in the file) is masked:
    the snapshot never holds one. Return the folder."""
    folder = directory / POLICY_FOLDER
    if policy.source is None:  # a policy built in code, not read from a file: nothing to keep
        return folder
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    sources = [policy.source] + [policy.source.parent / name for name in GLOBAL_FILE_NAMES
                                 if (policy.source.parent / name).is_file()][:1]
    kept = set()
    for source in sources:
        text = source.read_text(encoding="utf-8")
        if mask(text) != text:
            log.warning("%s: %s holds a secret (a notify URL); the copy kept in the snapshot has it masked as ***",
                        policy.name, source.name)
            text = mask(text)
        kept.add(source.name)
        write_unless_held(folder / source.name, lambda text=text: [text])
    for stale in folder.iterdir():  # a renamed policy file, a syncer.yaml removed since
        if stale.name not in kept:
            stale.unlink()
    return folder


def iterate_manifest(path):
    """Yield the entries of a manifest file one at a time, never the whole file. Raise
    OperationalError if it is not one, or names a path that would escape the dataset."""
    try:
        with open(path, encoding="utf-8") as handle:
            header = json.loads(handle.readline() or "null")
            if not isinstance(header, dict) or header.get("syncer_manifest") != MANIFEST_VERSION:
                raise OperationalError(f"{path}: not a syncer manifest")
            for line in handle:
                entry = json.loads(line)
                if is_escaping(entry["path"]):
                    raise OperationalError(f"the snapshot's manifest names a path that escapes the dataset: "
                                           f"{entry['path']!r}")
                yield entry
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OperationalError(f"the snapshot's manifest {path} cannot be read: {error}")


def load_manifest(path, store_path):
    """Return a ManifestStore at `store_path` (a scratch file; close() removes it)
    holding the manifest file at `path`. Raise OperationalError as iterate_manifest."""
    store = ManifestStore(store_path)
    try:
        return store.load(iterate_manifest(path))
    except BaseException:
        store.close()
        raise


def is_escaping(relative):
    """Return whether a '/'-separated relative path would leave its root: absolute,
    empty, or with a '..' component."""
    if not relative or relative.startswith("/") or "\x00" in relative:
        return True
    return any(part in ("..", "") for part in relative.split("/"))


def dataset_snapshots(repository, policy):
    """Return the dataset's snapshots (its tag and host), oldest first."""
    return repository.snapshots(dataset_tag(policy.name), policy.restic_host)


def find_snapshot(repository, policy, wanted="latest"):
    """Return the snapshot `wanted` ("latest" or an ID prefix) of the dataset. Raise
    OperationalError when there is none, UsageError for an unknown ID."""
    snapshots = dataset_snapshots(repository, policy)
    if not snapshots:
        raise OperationalError(f"offsite repository {repository.context.display} holds no snapshot of "
                               f"dataset {policy.name} (tag {dataset_tag(policy.name)}, host {policy.restic_host})")
    if wanted in (None, "latest"):
        return snapshots[-1]
    matches = [snapshot for snapshot in snapshots if snapshot["id"].startswith(wanted)]
    if len(matches) != 1:
        problem = "no" if not matches else "more than one"
        raise UsageError(f"{problem} snapshot of dataset {policy.name} has an ID starting with {wanted!r}")
    return matches[0]


def snapshot_layout(snapshot, dataset):
    """Return (data root, manifest file) as absolute paths inside `snapshot`. Raise
    OperationalError if the snapshot was not made by syncer push."""
    suffix = f"/manifests/{dataset}"
    manifests = [path for path in snapshot.get("paths", []) if path.rstrip("/").endswith(suffix)]
    others = [path for path in snapshot.get("paths", []) if path not in manifests]
    if len(manifests) != 1 or len(others) != 1:
        raise OperationalError(f"snapshot {snapshot.get('short_id')} was not made by syncer push "
                               f"(paths {snapshot.get('paths')}); it has no manifest")
    return others[0].rstrip("/") or "/", f"{manifests[0].rstrip('/')}/{MANIFEST_NAME}"


def fetch_manifest(repository, snapshot, dataset, directory, store_path=None):
    """Restore the manifest of `snapshot` into `directory`. Return (root, entries)
    where root is the dataset's absolute path inside the snapshot and entries a
    ManifestStore at `store_path` (default: beside the manifest; close() it)."""
    root, manifest = snapshot_layout(snapshot, dataset)
    destination = Path(directory) / MANIFEST_NAME
    repository.dump(snapshot["id"], manifest, destination)
    return root, load_manifest(destination, store_path or Path(directory) / MANIFEST_STORE_NAME)


def expected_digest(entry):
    """Return (algorithm, digest) to check a file against, preferring SHA-256, or
    (None, None) when the manifest holds none for it."""
    for algorithm in ("sha256", "md5"):
        if entry.get(algorithm):
            return algorithm, entry[algorithm]
    return None, None


def manifest_copy(entry):
    """Return a manifest entry as the copy the verdict expects (syncer.verdict.judge)."""
    return Copy(entry.get("size"), {"md5": entry.get("md5"), "sha256": entry.get("sha256")})


def check_files(base, entries, algorithms):
    """Yield (entry, (status, reason, bytes read, digests)) for the restored file below
    `base` of each manifest entry of `entries` (streamed), hashing with `algorithms`
    (ManifestStore.algorithms) on the thread pool."""
    with HashPool(algorithms or ("sha256",)) as pool:
        for entry in entries:
            local = base / entry["path"]
            if local.is_symlink() or not local.is_file():
                yield entry, ("failed", "missing from the restore", 0, {})
                continue
            for done in pool.submit(entry, local, entry.get("size")):
                yield done[0], check_file(done[1], done[0])
        for done in pool.drain():
            yield done[0], check_file(done[1], done[0])


def check_file(result, entry):
    """Return (status, reason, bytes, digests) for a hashed file (or its error)."""
    if isinstance(result, Exception):
        return "failed", f"cannot be read: {result}", 0, {}
    verdict = judge(manifest_copy(entry), Copy(result.size, result.digests), there="in the manifest")
    status = {OK: "ok", UNVERIFIABLE: "unverified"}.get(verdict.status, "failed")
    return status, verdict.reason, result.size, result.digests


def compare_with_offsite(policy, db):
    """Compare the local index of `policy`'s dataset with the manifest of its latest
    offsite snapshot. Return counts {"snapshot", "matching", "differing",
    "not_in_snapshot", "only_in_snapshot", "unverified"}, or {"error": message} when
    the repository cannot be read. Informational: differences are expected between
    a change and the next push."""
    import logging
    import tempfile

    from syncer.errors import SyncerError

    try:
        repository = open_repository(policy, db.state_dir)
        snapshot = find_snapshot(repository, policy)
        counts = {"snapshot": snapshot["id"], "matching": 0, "differing": 0, "not_in_snapshot": 0,
                  "only_in_snapshot": 0, "unverified": 0}
        # beside the state database, not in a /tmp that may be memory (tmpfs) on a small board
        with tempfile.TemporaryDirectory(prefix="syncer-offsite-", dir=db.state_dir) as directory:
            _, manifest = snapshot_layout(snapshot, policy.name)
            destination = Path(directory) / MANIFEST_NAME
            repository.dump(snapshot["id"], manifest, destination)
            compare_sorted(db.iterate_files(policy.name), iterate_manifest(destination), destination, counts)
    except SyncerError as error:
        from syncer.restic.runner import RepositoryMissing

        expected = isinstance(error, RepositoryMissing) or "holds no snapshot" in str(error)  # before a first push
        logging.getLogger("syncer.verify").log(logging.INFO if expected else logging.WARNING,
                                               "%s: offsite comparison skipped: %s", policy.name, error)
        return {"error": str(error)}
    return counts


def compare_sorted(indexed, entries, manifest, counts):
    """Count into `counts` how the index's rows `indexed` and the manifest's `entries`,
    both in path order, compare: a merge of two sorted streams, so memory stays flat.
    Raise OperationalError if the manifest is not in path order (push writes it so)."""
    counted = {OK: "matching", CHANGED: "differing", UNVERIFIABLE: "unverified", EXTRA_LOCAL: "not_in_snapshot"}
    entry, previous = next(entries, None), None
    for path, size, _, md5, sha256 in indexed:
        while entry is not None and entry["path"] < path:
            counts["only_in_snapshot"] += 1
            previous, entry = ordered(entry, previous, manifest), next(entries, None)
        found = entry if entry is not None and entry["path"] == path else None
        verdict = judge(found and manifest_copy(found), Copy(size, {"md5": md5, "sha256": sha256}))
        counts[counted[verdict.status]] += 1
        if found:
            previous, entry = ordered(entry, previous, manifest), next(entries, None)
    while entry is not None:
        counts["only_in_snapshot"] += 1
        previous, entry = ordered(entry, previous, manifest), next(entries, None)


def ordered(entry, previous, manifest):
    """Return `entry`'s path; raise OperationalError unless it follows `previous`."""
    if previous is not None and entry["path"] <= previous:
        raise OperationalError(f"the snapshot's manifest {manifest} is not in path order at {entry['path']!r}")
    return entry["path"]
