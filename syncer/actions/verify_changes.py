"""verify by changes: with the paths a lossless watch saw change, compare only those
(on either side) and carry every other path's finding over from the last verify, so k
changes cost O(k) instead of a comparison of the whole dataset.

What each side's changed paths come from:
- the local copy: the daemon's watch of it;
- a `local` authority (a directory on this machine): the daemon's watch of it;
- any other authority: its listing, which is the only way to see its changes, read
  whole as before, but compared with the stored one in SQLite (diff_listing), so only
  the paths whose listing row changed are judged.
"""

import logging

from syncer.actions.common import ITEMS_KEPT, recorded_run, require_on_this_machine
from syncer.actions.verify import (
    STATUSES,
    judge_rows,
    local_authority_root,
    note_document_difference,
    report_dataset,
)
from syncer.endpoints.factory import ENDPOINT_CLASSES, build_endpoint
from syncer.index.db import AUTHORITY
from syncer.index.dirty import refresh_paths
from syncer.index.incremental import (
    apply_listing,
    compare_scope,
    count_ok,
    covering_paths,
    diff_listing,
    first_findings,
    previous_counts,
    replace_findings_in,
)
from syncer.verdict import OK

log = logging.getLogger("syncer.verify")
# Past this many changed paths, and past one in PATHS_PER_CHANGE of the dataset's paths,
# comparing everything costs less: a changed path costs about 0.4 ms here, a path of the
# dataset about 3 us in a walk of a `local` authority and the whole comparison.
ALWAYS_BY_CHANGES = 1_000
PATHS_PER_CHANGE = 100


def verify_by_changes(policy, db, strict, local_paths, authority_paths=None):
    """Verify `policy`'s dataset by its changes: `local_paths` changed in the local copy
    since its last verify, `authority_paths` in a `local` authority's directory (None
    when they are not known). Return the dataset's report, with counts and items for
    the whole dataset, `local.examined` "changes", `compared` the number of rows
    judged, and checksum_coverage None (a sum over every local row).

    Return None, having recorded and changed nothing, when the last verify's findings
    cannot be carried over (it failed, was interrupted or never ran), when a `local`
    authority's changes are not known, for git repositories (whose mirrors are indexed
    whole), or when so many paths changed that comparing everything costs less: the
    caller then verifies the whole dataset.
    """
    prior = previous_counts(db, policy.name)  # before this run is recorded
    if prior is None or (policy.authority.type == "local" and authority_paths is None) or \
            ENDPOINT_CLASSES[policy.authority.type].capabilities.repositories:
        return None
    changes = len(local_paths) + len(authority_paths or ())
    if changes > max(ALWAYS_BY_CHANGES, sum(prior.values()) // PATHS_PER_CHANGE):
        log.info("%s: %d path(s) changed since the last verify, more than one in %d: comparing everything",
                 policy.name, changes, PATHS_PER_CHANGE)
        return None
    with recorded_run(db, policy.name, "verify") as outcome:
        require_on_this_machine(policy, "path", "authority")
        endpoint = build_endpoint(policy)
        algorithm = endpoint.capabilities.checksum or "sha256"
        stats, counts, (items, left_off), outcome["compared"] = compare_changes(
            policy, db, endpoint, algorithm, prior, local_paths, authority_paths or ())
        report_dataset(outcome, policy, db, endpoint, stats, counts, items, strict, "changes", coverage=False)
        if left_off:
            outcome["items_left_off"] = left_off
    return dict(outcome)


def compare_changes(policy, db, endpoint, algorithm, prior, local_paths, authority_paths):
    """Bring the rows of the changed paths up to date on both sides, judge only those
    and replace only their findings. Return (ScanStats of the local side, counts,
    (items, how many more), rows judged), counts and items for the whole dataset (at
    most ITEMS_KEPT items listed): `prior` (the last verify's counts) gives the ok
    paths outside the changes."""
    root = local_authority_root(endpoint)
    listed = []
    if root is None:
        log.info("%s: listing the authority %s", policy.name, endpoint.describe())
        entries = endpoint.list_entries()
        if endpoint.capabilities.documents:
            entries = (note_document_difference(endpoint, entry, policy.path) for entry in entries)
        listed = diff_listing(db, policy.name, entries)
    scope = covering_paths([*local_paths, *authority_paths, *listed])
    log.info("%s: %d local, %d authority path(s) changed since the last verify: comparing only those",
             policy.name, len(local_paths), len(authority_paths) + len(listed))
    ok_before = count_ok(db, policy.name, scope)  # before any authority row of the scope changes
    stats = refresh_paths(db, policy.name, policy.path, local_paths, policy.exclude, (algorithm,))
    skipped = [(path, f"local: {reason}") for path, reason in stats.skipped]
    if root is None:
        apply_listing(db, policy.name, listed)
    else:
        authority = refresh_paths(db, policy.name, root, authority_paths, policy.exclude, ("sha256",), side=AUTHORITY)
        skipped += [(path, f"authority: {reason}") for path, reason in authority.skipped]
    judged = dict.fromkeys(STATUSES, 0)
    items = list(judge_rows(endpoint, policy, compare_scope(db, policy.name, scope), set(stats.corrupt), judged))
    items += [{"path": path, "status": "unverifiable", "reason": reason} for path, reason in skipped]
    items.sort(key=lambda entry: (entry["path"], entry["status"]))  # as verify_dataset writes them
    replace_findings_in(db, policy.name, scope, items)
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: number for status, number in db.count_findings(policy.name).items()
                   if status in counts})
    counts["ok"] = prior["ok"] - ok_before + judged[OK]
    return stats, counts, first_findings(db, policy.name, ITEMS_KEPT), sum(judged.values())
