"""run: the job the systemd timer calls, every step for every dataset; and what each
scheduled action runs."""

from syncer.actions.drill import run_drills
from syncer.actions.pull import pulls_on_run, run_pull
from syncer.actions.push import run_push
from syncer.actions.scrub import run_scrub
from syncer.actions.snapshots import run_check
from syncer.actions.verify import run_verify

# What a policy's `schedule` entry (or `syncer job ACTION`) runs: runner(policies, db)
# returns the report {"datasets": [result, ...]}. The keys are syncer.policy.model.SCHEDULED_ACTIONS.
RUNNERS = {"pull": run_pull, "verify": run_verify, "push": run_push, "check": run_check, "drill": run_drills,
           "scrub": run_scrub}


def run_all(policies, db, progress=None):
    """For each dataset: pull (see pulls_on_run), verify, then push when it has an
    offsite section (a push runs even after findings: the snapshot history keeps
    earlier good versions).
    Return the report, with one section per step (see run_results)."""
    report = {"pull": {"datasets": []}, "verify": {"datasets": []}, "push": {"datasets": []}}
    for policy in policies:
        steps = [("pull", run_pull, None)] if pulls_on_run(policy) else []
        steps += [("verify", run_verify, progress)] + ([("push", run_push, None)] if policy.offsite else [])
        for step, runner, step_progress in steps:
            report[step]["datasets"] += runner([policy], db, progress=step_progress)["datasets"]
    return report


def run_results(report):
    """Return the per-dataset results of every step of run_all's `report`."""
    return [result for step in report.values() for result in step["datasets"]]
