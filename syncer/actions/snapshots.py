"""snapshots and check: what the offsite repository holds, and whether it is sound."""

import logging
import math
import time

from syncer.actions.common import for_each_dataset, recorded_run, watch_restic_memory
from syncer.actions.offsite import (
    clear_stale_locks,
    dataset_snapshots,
    open_repository,
    repository_key,
    require_offsite,
)
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.index.read_data import next_slice, read_data_position, record_slice
from syncer.log import plural
from syncer.policy.settings import cron_interval

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
    the data subset given, else the next slice of the policy's offsite.read_data cycle,
    else its offsite.read_data_subset. Return report: exit 1 when restic found errors
    in a repository."""
    checked = {}

    def work(policy):
        require_offsite(policy)
        cycle = None if read_data_subset else read_data_slices(policy)
        subset = read_data_subset or policy.offsite.read_data_subset
        key = (policy.offsite.repository, subset, cycle)
        if key in checked:
            return dict(checked[key], name=policy.name, same_as=checked[key]["name"])
        with recorded_run(db, policy.name, "check") as outcome:
            repository = open_repository(policy, db.state_dir)
            clear_stale_locks(repository, db, policy.name)
            address = repository_key(policy)
            if cycle:
                done = next_slice(read_data_position(db, address), cycle)
                subset = f"{done}/{cycle}"
            log.info("%s: restic check of %s%s", policy.name, repository.context.display,
                     f" reading {subset} of the data" if subset else "")
            result = repository.check(subset)
            ok, broken = result.ok, result.broken_packs
            if not ok:
                log.warning("%s: restic check found errors in %s", policy.name, repository.context.display)
            if broken:
                log.warning("%s: %s damaged in %s: %s", policy.name, plural(len(broken), "pack file"),
                            repository.context.display, ", ".join(pack[:8] for pack in broken[:10]))
            if cycle and ok:  # a slice with errors is read again by the next check
                record_slice(db, address, cycle, done, time.time())
                if done == cycle:
                    log.info("%s: every pack of %s has been read: the read-data cycle of %d checks is complete",
                             policy.name, repository.context.display, cycle)
            outcome.update(name=policy.name, repository=repository.context.display, read_data_subset=subset,
                           ok=ok, broken_packs=broken, output=result.lines[-20:],
                           restic_peak_rss_bytes=repository.peak_rss, exit_code=EXIT_OK if ok else EXIT_FINDINGS)
            if cycle:
                outcome.update(read_data=read_data_progress(db, policy))
        watch_restic_memory(db, policy.name, "check", repository.peak_rss)
        checked[key] = dict(outcome)
        return dict(outcome)

    return for_each_dataset(policies, work, action="check")


def read_data_slices(policy):
    """Return t, the number of --read-data-subset=n/t slices of `policy`'s read_data
    cycle (offsite.read_data.checks, or as many checks as schedule.check holds in
    offsite.read_data.cycle, so that the cycle is never longer), or None without one."""
    read_data = policy.offsite and policy.offsite.read_data
    if not read_data:
        return None
    if read_data.checks:
        return read_data.checks
    interval = cron_interval(policy.schedule["check"])
    return max(1, math.floor(read_data.cycle / interval)) if interval else 1


def read_data_progress(db, policy):
    """Return where `policy`'s repository is in its read_data cycle, or None without
    one: {"slices", "slices_read" (this cycle), "cycle_done" (their share),
    "last_full_read_at" (when a cycle last ended: every pack read without an error)}."""
    slices = read_data_slices(policy)
    if not slices:
        return None
    position = read_data_position(db, repository_key(policy))
    read = next_slice(position, slices) - 1
    return {"slices": slices, "slices_read": read, "cycle_done": round(read / slices, 4),
            "last_full_read_at": position and position["last_full"]}
