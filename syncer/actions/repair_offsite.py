"""The offsite snapshots as a source of good copies for repair.

Snapshots are tried newest first; a file is taken from the first snapshot whose
manifest records the digest the file is known to have had. restic's `dump` writes
it to a temporary file in the state directory; repair then checks the bytes again
as it writes them into place.
"""

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

from syncer.actions.offsite import dataset_snapshots, fetch_manifest, manifest_copy, open_repository
from syncer.errors import SyncerError
from syncer.verdict import Copy, judge

log = logging.getLogger("syncer.repair")


def snapshot_copies(policy, db, wanted):
    """Yield (path, open_stream) for files of `wanted` found good in an offsite snapshot."""
    if policy.offsite is None:
        return
    repository = open_repository(policy, db.state_dir)
    remaining = dict(wanted)
    scratch = Path(db.state_dir) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    for snapshot in reversed(dataset_snapshots(repository, policy)):
        if not remaining:
            return
        with tempfile.TemporaryDirectory(dir=scratch, prefix="manifest-") as directory:
            try:
                root, entries = fetch_manifest(repository, snapshot, policy.name, directory)
            except SyncerError as error:
                log.warning("%s: snapshot %s skipped: %s", policy.name, snapshot.get("short_id"), error)
                continue
            with entries:
                found = [path for path, want in remaining.items()
                         if (entry := entries.get(path)) and judge(Copy(digests=want["expected"]),
                                                                   manifest_copy(entry)).ok]
        for path in found:
            del remaining[path]
            yield path, dumped(repository, snapshot["id"], f"{root}/{path}", scratch)


def dumped(repository, snapshot_id, path, scratch):
    @contextmanager
    def open_stream():
        with tempfile.NamedTemporaryFile(dir=scratch, prefix="dump-") as handle:
            repository.dump(snapshot_id, path, handle.name)
            with open(handle.name, "rb") as stream:
                yield stream

    return open_stream
