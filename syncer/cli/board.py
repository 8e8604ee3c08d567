"""Setting syncer up on a machine: `syncer doctor`."""

import click

from syncer.cli.common import global_options, json_option, settings
from syncer.cli.group import cli
from syncer.log import escape_controls, mask

STATUS_STYLES = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "bright_black"}


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@json_option
def doctor(datasets, as_json):
    """Check the whole setup: policies, restic, the state directory, the systemd units,
    and per dataset its path, credentials files, authority (one authenticated request),
    offsite repository, clock against S3, inotify watches and notification URLs.

    Exit 0 when every check passes or warns, 1 when any fails, 2 when the policies are
    invalid. Writes nothing to a dataset or a repository; pings nothing.
    SYNCER_MAX_USER_WATCHES stands in for the kernel's fs.inotify.max_user_watches.
    """
    from syncer.actions.doctor import run_doctor
    from syncer.cli.render import print_json

    current = settings()
    report = run_doctor(current.existing_policies_dir(), current.resolved_state_dir(), datasets)
    if as_json:
        print_json({"checks": report["checks"]})
    else:
        render_doctor(report["checks"])
    return [report]


def render_doctor(checks):
    """One line per check; under each warn or fail, its fix."""
    width = max((len(item["dataset"] or "") for item in checks), default=0)
    for item in checks:
        status = click.style(f"{item['status']:<4}", fg=STATUS_STYLES[item["status"]])
        where = (item["dataset"] or "").ljust(width)
        click.echo(f"{status}  {escape_controls(where)}  {item['check']}: {escape_controls(mask(item['detail']))}")
        if item["fix"]:
            click.echo(f"{'':4}  {'':{width}}  fix: {escape_controls(mask(item['fix']))}")
    counts = {status: sum(1 for item in checks if item["status"] == status) for status in STATUS_STYLES}
    click.echo(", ".join(f"{count} {status}" for status, count in counts.items()))
