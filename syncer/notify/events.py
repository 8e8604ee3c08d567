"""Which outcomes notify: by default only failures and recoveries."""

PROBLEM_RESULTS = ("findings", "failed", "interrupted")


def is_problem(result):
    return result in PROBLEM_RESULTS


def classify(previous_result, result):
    """Return "failure", "recovery" or "success" for a run that ended with `result`
    after one that ended with `previous_result` (None when there was none)."""
    if is_problem(result):
        return "failure"
    if previous_result is not None and is_problem(previous_result):
        return "recovery"
    return "success"


def should_notify(event, events_setting):
    """Failures and recoveries notify; plain successes only with events: all."""
    return event in ("failure", "recovery") or events_setting == "all"
