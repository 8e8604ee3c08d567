"""The `syncer` command line: parse, load policies, call one action, render.

Commands live in modules that attach to the group (syncer.cli.group); this module
imports them all and is the one place where errors become messages and exit codes.
"""

import logging
import sys

import click

from syncer.cli import always, cloud, integrity, offsite  # noqa: F401 (their commands attach to the group)
from syncer.cli.common import Settings, global_options, json_option, settings
from syncer.cli.group import cli
from syncer.errors import EXIT_FAILURE, EXIT_USAGE, PolicyError, SyncerError
from syncer.log import escape_controls, mask, plural

log = logging.getLogger("syncer")


@cli.command("check-policies")
@global_options
@json_option
@click.option("--schema", is_flag=True, help="Print the JSON Schema of a policy file (for editors) and exit.")
def check_policies(as_json, schema):
    """Validate every policy; report all problems at once (exit 2 if any)."""
    from syncer.cli.render import print_json

    if schema:
        from syncer.policy.model import policy_json_schema

        return print_json(policy_json_schema())
    from syncer.policy import load_policies

    current = settings()
    try:
        # Everything, this machine's paths and files too: every problem is exit 2 here.
        policies = load_policies(current.existing_policies_dir(), state_dir=current.resolved_state_dir())
    except PolicyError as error:
        if as_json:
            print_json({"valid": False, "problems": error.problems})
            sys.exit(error.exit_code)
        raise
    if as_json:
        print_json({"valid": True, "datasets": [p.name for p in policies]})
    else:
        for policy in policies:
            click.echo(f"{policy.source.name}: ok (dataset {policy.name}, authority {policy.authority.type})")


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@click.option("--deep", is_flag=True, help="Re-hash every file, ignoring the hash cache.")
@click.option("--strict", is_flag=True, help="Count unverifiable items as findings.")
@json_option
def verify(datasets, deep, strict, as_json):
    """Compare local copies with their authoritative copies by checksum."""
    from syncer.actions.verify import run_verify
    from syncer.cli.render import print_json, progress_reporter, render_verify

    current = settings()
    policies = current.policies(datasets)
    with progress_reporter(not as_json) as progress:
        report, exit_code = run_verify(policies, current.db(), deep=deep, strict=strict, progress=progress)
    print_json(report) if as_json else render_verify(report)
    sys.exit(exit_code)


@cli.command()
@global_options
@json_option
def status(as_json):
    """One line per dataset: size, checksum coverage, findings, last runs."""
    from syncer.actions.status import run_status
    from syncer.cli.render import print_json, render_status

    current = settings()
    report, exit_code = run_status(current.policies(), current.existing_db())
    print_json(report) if as_json else render_status(report)
    sys.exit(exit_code)


@cli.command()
@global_options
@json_option
def run(as_json):
    """The scheduled job: every step for every dataset."""
    from syncer.actions.run import run_all
    from syncer.cli.render import print_json, progress_reporter, render_verify

    current = settings()
    policies = current.policies()
    with progress_reporter(not as_json) as progress:
        report, exit_code = run_all(policies, current.db(), progress=progress)
    if as_json:
        print_json(report)
    else:
        if report.get("pull", {}).get("datasets"):
            from syncer.cli.cloud import render_pull

            render_pull(report["pull"])
        render_verify(report["verify"])
        if report.get("push", {}).get("datasets"):
            from syncer.cli.offsite import render_push

            render_push(report["push"])
    sys.exit(exit_code)


def report_error(message, exit_code):
    click.echo(escape_controls(mask(f"syncer: {message}")), err=True)
    return exit_code


def main(argv=None):
    """Entry point: run the CLI; turn every error into one message and an exit code.
    Policy files that were left out make the exit code at least 2, whatever the others
    did."""
    current = Settings()
    try:
        code = cli.main(args=argv, prog_name="syncer", standalone_mode=False, obj=current)
    except SystemExit as done:  # a command's sys.exit(exit code)
        code = done.code
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.ClickException as error:
        error.show()
        code = EXIT_USAGE
    except click.exceptions.Abort:
        code = report_error("interrupted", 130)
    except PolicyError as error:
        for problem in error.problems:
            click.echo(escape_controls(mask(problem)), err=True)
        code = report_error(f"{plural(len(error.problems), 'problem')} in the policies", error.exit_code)
    except SyncerError as error:
        code = report_error(str(error), error.exit_code)
    except KeyboardInterrupt:
        code = report_error("interrupted", 130)
    except Exception as error:  # a bug: one line for the user, the traceback with -v
        log.debug("internal error", exc_info=True)
        code = report_error(f"internal error: {error.__class__.__name__}: {error} (run with -v for details)",
                            EXIT_FAILURE)
    if current.policy_problems:
        problems = plural(len(current.policy_problems), "problem")
        said = (f"left out {', '.join(current.left_out)} ({problems} above); the other datasets ran"
                if current.left_out else f"{problems} in the policies (above)")
        code = max(code or 0, report_error(said, EXIT_USAGE))
    sys.stdout.flush()
    sys.exit(code or 0)
