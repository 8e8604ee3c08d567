"""Which function carries out each scheduled action, found at run time.

Actions arrive in separate releases: one that this version does not have is
reported as unavailable (by whoever asks, once), never a crash and never silence.
"""

import importlib
import inspect

from syncer.actions.common import for_each_dataset

# action -> candidate (module, function) pairs, first found wins
RUNNERS = {
    "pull": (("syncer.actions.pull", "run_pull"),),
    "verify": (("syncer.actions.verify", "run_verify"),),
    "push": (("syncer.actions.push", "run_push"),),
    "check": (("syncer.actions.check", "run_check"), ("syncer.actions.snapshots", "run_check")),
    "drill": (("syncer.actions.drill", "run_drill"),),
    "scrub": (("syncer.actions.scrub", "run_scrub"),),
}
NOT_AVAILABLE = "not available in this version"


def find_runner(action):
    """Return (runner, None) for `action`, or (None, why it is unavailable).

    A runner is called as runner(policies, db) and returns (report, exit_code); an
    action written for one policy at a time is adapted to that.
    """
    if action not in RUNNERS:
        return None, f"unknown action {action!r}"
    problems = []
    for module_name, function_name in RUNNERS[action]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                problems.append(f"{module_name} cannot be imported: {error}")
            continue
        function = getattr(module, function_name, None)
        if function is not None:
            return adapt(function), None
        problems.append(f"{module_name} has no {function_name}")
    return None, NOT_AVAILABLE + (f" ({'; '.join(problems)})" if problems else "")


def adapt(function):
    """Return a runner(policies, db) for `function`, which takes either the list of
    policies or one policy as its first argument."""
    first = next(iter(inspect.signature(function).parameters), None)
    if first != "policy":
        return function

    def each(policies, db):
        def work(policy):
            report, exit_code = function(policy, db)
            return dict(report, name=policy.name, exit_code=exit_code)

        results, exit_code = for_each_dataset(policies, work)
        return {"datasets": results}, exit_code

    return each


def available_actions():
    return {action: find_runner(action)[1] is None for action in RUNNERS}
