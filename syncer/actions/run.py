"""run: the job the systemd timer calls, every step for every dataset."""

from syncer.actions.verify import run_verify


def run_all(policies, db, progress=None):
    """Verify every dataset. Return (report, exit_code) with one section per step."""
    verify_report, exit_code = run_verify(policies, db, progress=progress)
    return {"verify": verify_report}, exit_code
