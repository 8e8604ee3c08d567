"""Changes the file watcher saw: mark them dirty, and bring just them up to date in the
index before a push, so k changed files cost O(k) hashing, not a pass over the dataset."""

import logging

from syncer.endpoints.factory import checksum_algorithm
from syncer.index.dirty import mark_changed, refresh_paths
from syncer.index.lock import dataset_lock
from syncer.log import plural

log = logging.getLogger("syncer.watch")


def mark_changes(db, dataset, paths):
    """Mark the index rows of changed `paths` dirty, so the next verify re-hashes them."""
    mark_changed(db, dataset, sorted(paths))


def refresh_changes(policy, db, paths):
    """Re-index only `paths` of `policy`'s dataset (hashing with the authority's
    algorithm), under the dataset's lock. Return the ScanStats."""
    algorithm = checksum_algorithm(policy.authority.type)
    with dataset_lock(db.state_dir, policy.name):
        stats = refresh_paths(db, policy.name, policy.path, paths, policy.exclude, (algorithm,))
    log.info("%s: %s re-indexed: %s hashed (%.1f MiB), %d removed", policy.name,
             plural(len(paths), "changed path"), plural(stats.hashed, "file"), stats.hashed_bytes / 2**20,
             stats.removed)
    return stats
