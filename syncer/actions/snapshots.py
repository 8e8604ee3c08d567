"""snapshots and check: what the offsite repository holds, and whether it is sound."""

import logging

from syncer.actions.common import for_each_dataset, recorded_run
from syncer.actions.offsite import clear_stale_locks, dataset_snapshots, open_repository, require_offsite
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.log import plural

log = logging.getLogger("syncer.offsite")


def run_snapshots(policies, db):
    """List each dataset's snapshots (its tag and host). Return the report."""
    def work(policy):
        require_offsite(policy)
        repository = open_repository(policy, db.state_dir)
        snapshots = [{"id": snapshot["id"], "short_id": snapshot.get("short_id"), "time": snapshot.get("time"),
                      "host": snapshot.get("hostname"), "paths": snapshot.get("paths", []),
                      "tags": snapshot.get("tags", [])} for snapshot in dataset_snapshots(repository, policy)]
        return {"name": policy.name, "repository": repository.context.display, "host": policy.restic_host,
                "snapshots": snapshots, "exit_code": EXIT_OK}

    return for_each_dataset(policies, work)


def run_check(policies, db, read_data_subset=None):
    """Run `restic check` on each dataset's repository (once per repository), reading
    the data subset given, else the policy's offsite.read_data_subset. Return
    report: exit 1 when restic found errors in a repository."""
    checked = {}

    def work(policy):
        require_offsite(policy)
        subset = read_data_subset or policy.offsite.read_data_subset
        key = (policy.offsite.repository, subset)
        if key in checked:
            return dict(checked[key], name=policy.name, same_as=checked[key]["name"])
        with recorded_run(db, policy.name, "check") as outcome:
            repository = open_repository(policy, db.state_dir)
            clear_stale_locks(repository, db, policy.name)
            log.info("%s: restic check of %s%s", policy.name, repository.context.display,
                     f" reading {subset} of the data" if subset else "")
            result = repository.check(subset)
            ok, broken = result.ok, result.broken_packs
            if not ok:
                log.warning("%s: restic check found errors in %s", policy.name, repository.context.display)
            if broken:
                log.warning("%s: %s damaged in %s: %s", policy.name, plural(len(broken), "pack file"),
                            repository.context.display, ", ".join(pack[:8] for pack in broken[:10]))
            outcome.update(name=policy.name, repository=repository.context.display, read_data_subset=subset,
                           ok=ok, broken_packs=broken, output=result.lines[-20:],
                           exit_code=EXIT_OK if ok else EXIT_FINDINGS)
        checked[key] = dict(outcome)
        return dict(outcome)

    return for_each_dataset(policies, work, action="check")
