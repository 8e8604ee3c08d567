"""Commands run before and after each action, for database dumps and containers.

A hook is a shell command from the policy's `hooks` section. `before_<action>`
failing aborts the action for that dataset; `after_<action>` failing makes the
action a failure; `on_error` runs when the action failed and `finally` always.
`on_error` and `finally` apply to every action; `on_error_<action>` and
`finally_<action>` to one.
"""

import logging
import os
from dataclasses import dataclass

from syncer.errors import EXIT_FAILURE, OperationalError, SyncerError
from syncer.log import mask
from syncer.process import TimedOut, run_process

log = logging.getLogger("syncer.hooks")
DEFAULT_TIMEOUT = 30 * 60
# Never handed to a hook: syncer's own credentials and anything that would lead to them.
WITHHELD = ("CREDENTIALS_DIRECTORY", "RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND",
            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "SMUGMUG_API_SECRET", "SMUGMUG_TOKEN",
            "SMUGMUG_TOKEN_SECRET", "BUNNY_ACCESS_KEY", "GITLAB_TOKEN")


class HookFailed(OperationalError):
    """A hook command exited non-zero or ran past its timeout."""


@dataclass(frozen=True)
class Hooks:
    commands: dict  # hook name -> list of shell commands
    timeout: float = DEFAULT_TIMEOUT

    def named(self, name):
        return list(self.commands.get(name) or ())

    def for_action(self, action):
        """Return (before, after, on_error, finally) command lists for `action`."""
        return (self.named(f"before_{action}"), self.named(f"after_{action}"),
                self.named(f"on_error_{action}") + self.named("on_error"),
                self.named(f"finally_{action}") + self.named("finally"))


def hooks_of(policy):
    return Hooks(policy.hooks.commands, policy.hooks.timeout)


def hook_environment(policy, action, status, facts):
    environment = {k: v for k, v in os.environ.items() if k not in WITHHELD and not k.startswith("SYNCER_")}
    environment.update(SYNCER_DATASET=policy.name, SYNCER_ACTION=action, SYNCER_STATUS=str(status),
                       SYNCER_PATH=str(policy.path))
    for key, value in facts.items():
        if value is not None:
            environment[f"SYNCER_{key.upper()}"] = str(value)
    return environment


def run_command(label, command, environment, timeout, cwd=None):
    """Run one hook command through /bin/sh and the process door (its own process
    group, stopped with its children at the timeout), logging its output line by line.
    Return its exit status; -1 when it was stopped at the timeout."""
    try:
        return run_process(command, shell=True, on_output=lambda line: log.info("%s: %s", label, line.rstrip()),
                           environment=environment, cwd=cwd, timeout=timeout, display=f"{label}: {command}",
                           logger=log)
    except TimedOut:
        return -1


def run_hook_list(name, commands, policy, action, status, facts, timeout):
    """Run `commands` in order; raise HookFailed at the first failure."""
    environment = hook_environment(policy, action, status, facts)
    for number, command in enumerate(commands, start=1):
        label = f"hook {name}[{number}]"
        log.info("%s: %s: running", policy.name, label)
        exit_status = run_command(label, command, environment, timeout, cwd=policy.path if policy.path.is_dir()
                                  else None)
        if exit_status != 0:
            how = f"timed out after {timeout:.0f}s" if exit_status == -1 else f"exited with status {exit_status}"
            raise HookFailed(f"{policy.name}: {label} ({policy.file_label}: hooks.{name}) {how}")


def with_hooks(policy, action, work, dry_run=False):
    """Run work() between the policy's hooks for `action`; return its result dict.

    A failing before-hook aborts the action (exit 3); a failing after-hook turns the
    result into a failure. on_error and finally hooks run as their names say; a
    failure inside them is logged, and does not hide the action's own error.
    """
    hooks = hooks_of(policy)
    before, after, on_error, always = hooks.for_action(action)
    if not (before or after or on_error or always):
        return work()
    if dry_run:
        for name, commands in ((f"before_{action}", before), (f"after_{action}", after),
                               ("on_error", on_error), ("finally", always)):
            for number, command in enumerate(commands, start=1):
                log.info("%s: dry run: would run hook %s[%d]: %s", policy.name, name, number, mask(command))
        return work()
    facts, status = {}, 0
    try:
        run_hook_list(f"before_{action}", before, policy, action, status, facts, hooks.timeout)
        result = work()
        status = result.get("exit_code", 0)
        facts = {key: result.get(key) for key in ("bytes_added", "files_new", "files_changed")}
        facts["snapshot_id"] = result.get("snapshot_id") or result.get("snapshot")
        run_hook_list(f"after_{action}", after, policy, action, status, facts, hooks.timeout)
    except SyncerError as error:
        status = error.exit_code
        run_quietly("on_error", on_error, policy, action, status, facts, hooks.timeout)
        run_quietly("finally", always, policy, action, status, facts, hooks.timeout)
        raise
    except BaseException:
        run_quietly("finally", always, policy, action, EXIT_FAILURE, facts, hooks.timeout)
        raise
    run_quietly("finally", always, policy, action, status, facts, hooks.timeout)
    return result


def run_quietly(name, commands, policy, action, status, facts, timeout):
    try:
        run_hook_list(name, commands, policy, action, status, facts, timeout)
    except HookFailed as error:
        log.error("%s", error)
