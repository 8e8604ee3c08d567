"""run: the job the systemd timer calls, every step for every dataset; and what each
scheduled action runs."""

from syncer.actions.drill import run_drills
from syncer.actions.pull import pulls_on_run, run_pull
from syncer.actions.push import run_push
from syncer.actions.scrub import run_scrub
from syncer.actions.snapshots import run_check
from syncer.actions.verify import run_verify

# What a policy's `schedule` entry (or `syncer job ACTION`) runs: runner(policies, db)
# returns (report, exit_code). The keys are syncer.policy.model.SCHEDULED_ACTIONS.
RUNNERS = {"pull": run_pull, "verify": run_verify, "push": run_push, "check": run_check, "drill": run_drills,
           "scrub": run_scrub}


def run_all(policies, db, progress=None):
    """For each dataset: pull (see pulls_on_run), verify, then push when it has an
    offsite section (a push runs even after findings: the snapshot history keeps
    earlier good versions).
    Return (report, exit_code) with one section per step; the worst exit code wins."""
    report, exit_code = {"pull": {"datasets": []}, "verify": {"datasets": []}, "push": {"datasets": []}}, 0
    for policy in policies:
        steps = [("pull", run_pull, None)] if pulls_on_run(policy) else []
        steps += [("verify", run_verify, progress)] + ([("push", run_push, None)] if policy.offsite else [])
        for step, runner, step_progress in steps:
            step_report, step_code = runner([policy], db, progress=step_progress)
            report[step]["datasets"] += step_report["datasets"]
            exit_code = max(exit_code, step_code)
    return report, exit_code
