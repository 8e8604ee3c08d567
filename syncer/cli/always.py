"""Commands of the always-on mode: `daemon`, `job` (what the timers call) and
`systemd install`."""

import logging
from pathlib import Path

import click

from syncer.cli.common import global_options, json_option, settings
from syncer.cli.group import cli
from syncer.errors import OperationalError, SyncerError, exit_code_of

log = logging.getLogger("syncer")
JOB_ACTIONS = ("run", "pull", "verify", "push", "check", "drill", "scrub")


def global_settings(current):
    from syncer.policy.load import load_global_settings

    return load_global_settings(current.resolved_policies_dir())


@cli.command()
@global_options
def daemon():
    """Run the schedules of every policy, watch datasets with `watch: true`, and report
    to healthchecks/ntfy/webhooks and the metrics textfile. Stops cleanly on SIGTERM."""
    from syncer.actions.supervise import report_left_out
    from syncer.schedule.daemon import Daemon

    current = settings()
    policies = current.policies()
    global_ = global_settings(current)
    # Files left out are said now (stderr, the global receivers); the daemon runs the
    # others, and its exit code tells how it stopped.
    report_left_out(global_, "daemon", current.policy_problems)
    current.policy_problems = []
    return Daemon(policies, current.resolved_state_dir(), global_, current.resolved_policies_dir()).run()


@cli.command()
@global_options
@click.argument("action", type=click.Choice(JOB_ACTIONS))
@click.argument("datasets", nargs=-1)
@json_option
def job(action, datasets, as_json):
    """Run one ACTION on every dataset (or those named) as the timers do: with
    healthchecks pings, failure/recovery notifications and the metrics textfile."""
    from syncer.actions.run import RUNNERS, run_all, run_results
    from syncer.actions.supervise import report_left_out, report_unstartable, supervised
    from syncer.cli.render import print_json, render_verify

    runner = run_all if action == "run" else RUNNERS[action]
    current = settings()
    global_ = global_settings(current)
    try:
        policies = current.policies(datasets)
        every_policy = current.policies()
    except SyncerError as error:
        report_unstartable(global_, action, error)
        raise
    with supervised(policies, current.db(), global_, every_policy, action) as outcome:
        try:
            report = runner(policies, current.db())
        except Exception as error:
            outcome.update(exit_code=exit_code_of(error), error=str(error))
            raise
    report_left_out(global_, action, current.policy_problems)  # after the pings: a broken file is not a success
    if as_json:
        print_json(report)
    elif action == "verify":
        render_verify(report)
    elif action == "run" and "verify" in report:
        render_verify(report["verify"])
    return run_results(report) if action == "run" else report["datasets"]


@cli.group()
def systemd():
    """systemd units for this machine."""


@systemd.command()
@global_options
@click.option("--dry-run", is_flag=True, help="Print the units instead of writing them.")
@click.option("--target", type=click.Path(file_okay=False), default="/etc/systemd/system", show_default=True,
              help="Where to write the units.")
def install(dry_run, target):
    """Render the units with this machine's paths (the installed syncer, the policies
    and state dirs) and write them (or print them with --dry-run)."""
    from syncer.schedule.units import hidden_by_private_tmp, machine_paths, render_units

    current = settings()
    policies = current.policies()
    paths = machine_paths(policies, current.resolved_policies_dir(), current.resolved_state_dir(),
                          global_settings(current))
    for warning in hidden_by_private_tmp(policies, paths):
        log.warning("%s", warning)
    units = render_units(paths)
    target = Path(target)
    if dry_run:
        for name, text in units.items():
            click.echo(f"# {target / name}")
            click.echo(text)
        return
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            temporary = target / f".{name}.tmp"
            temporary.write_text(text)
            temporary.chmod(0o644)
            temporary.replace(target / name)
    except OSError as error:
        raise OperationalError(f"cannot write the units into {target}: {error.strerror or error}")
    click.echo(f"wrote {', '.join(units)} into {target}")
    click.echo("then either the timers (a daily run, an hourly verify):")
    click.echo("  systemctl daemon-reload && systemctl enable --now syncer.timer syncer-verify.timer")
    click.echo("or the always-on daemon (the policies' schedules, change watching):")
    click.echo("  systemctl daemon-reload && systemctl enable --now syncer-daemon.service")
