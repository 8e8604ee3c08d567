"""The `syncer` command line: parse, load policies, call one action, render.

Commands live in modules that attach to the group (syncer.cli.group) and return their
results; this module imports them all and is the one place where results and errors
become messages and an exit code.
"""

import logging
import sys

import click

from syncer.cli import always, board, cloud, integrity, offsite, page  # noqa: F401 (their commands attach to the group)
from syncer.cli.common import Settings, global_options, json_option, settings
from syncer.cli.group import cli
from syncer.errors import EXIT_USAGE, Interrupted, PolicyError, SyncerError, UsageError, exit_code_of
from syncer.log import escape_controls, mask, plural
from syncer.verdict import CHANGED, EXTRA_LOCAL, MISSING_LOCAL, UNVERIFIABLE

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
    # Everything, this machine's paths and files too: every problem is exit 2 here.
    policies = load_policies(current.existing_policies_dir(), state_dir=current.resolved_state_dir())
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
        report = run_verify(policies, current.db(), deep=deep, strict=strict, progress=progress)
    print_json(report) if as_json else render_verify(report)
    return report["datasets"]


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@click.option("--status", "statuses", multiple=True,
              type=click.Choice((MISSING_LOCAL, EXTRA_LOCAL, CHANGED, UNVERIFIABLE)),
              help="List only items of this status (repeat for more).")
@json_option
def findings(datasets, statuses, as_json):
    """List every finding of the last verify, however many (a verify's report stops at 10,000)."""
    from syncer.actions.findings import run_findings
    from syncer.cli.render import print_json_streamed, render_findings

    current = settings()
    report = run_findings(current.policies(datasets), current.existing_db(), statuses)
    print_json_streamed(report) if as_json else render_findings(report)
    return report["datasets"]


@cli.command()
@global_options
@json_option
def status(as_json):
    """One line per dataset: size, checksum coverage, findings, last runs."""
    from syncer.actions.status import run_status
    from syncer.cli.render import print_json, render_status

    current = settings()
    report = run_status(current.policies(), current.existing_db())
    print_json(report) if as_json else render_status(report)
    return report["datasets"]


@cli.command()
@global_options
@json_option
def run(as_json):
    """The scheduled job: every step for every dataset."""
    from syncer.actions.run import run_all, run_results
    from syncer.cli.render import print_json, progress_reporter, render_verify

    current = settings()
    policies = current.policies()
    with progress_reporter(not as_json) as progress:
        report = run_all(policies, current.db(), progress=progress)
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
    return run_results(report)


board.complete_dataset_arguments(cli)  # every command is attached by now


def main(argv=None):
    """Entry point: run the command; turn its results, or the error that stopped it,
    into one exit code. Policy files that were left out make the exit code of a command
    over every dataset at least 2, whatever the others did."""
    argv = sys.argv[1:] if argv is None else list(argv)
    current = Settings()
    try:
        results = cli.main(args=argv, prog_name="syncer", standalone_mode=False, obj=current)
        code = results if isinstance(results, int) else exit_code_of(results)  # click's own code for --help
    except (Exception, KeyboardInterrupt) as error:
        code = report_error(error, wants_json(argv))
    if current.policy_problems:
        problems = plural(len(current.policy_problems), "problem")
        said = (f"left out {', '.join(current.left_out)} ({problems} above); the other datasets ran"
                if current.left_out else f"{problems} in the policies (above)")
        click.echo(escape_controls(mask(f"syncer: {said}")), err=True)
        if current.ran_all:
            code = max(code or 0, EXIT_USAGE)
    sys.stdout.flush()
    sys.exit(code)


def wants_json(argv):
    """Whether the command line asks for --json. Read from the words themselves: the
    error may have come before click parsed them (an unknown option)."""
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def report_error(error, as_json):
    """Tell the user what stopped the command: one message on stderr (a policy error's
    problems each on a line of its own) and, with --json, one document on stdout:
    {"error": {"message", "exit_code", "problems"?}}. Return the exit code."""
    shown = isinstance(error, click.ClickException)
    if shown:
        error.show()  # on stderr, with click's usage line and hint
        error = UsageError(error.format_message())
    elif isinstance(error, (click.exceptions.Abort, KeyboardInterrupt)):
        error = Interrupted("interrupted")
    elif not isinstance(error, SyncerError):  # a bug: one line for the user, the traceback with -v
        log.debug("internal error", exc_info=error)
        error = SyncerError(f"internal error: {error.__class__.__name__}: {error} (run with -v for details)")
    problems = [mask(problem) for problem in error.problems] if isinstance(error, PolicyError) else []
    message = mask(f"{plural(len(problems), 'problem')} in the policies" if problems else str(error))
    if not shown:
        for line in problems + [f"syncer: {message}"]:
            click.echo(escape_controls(line), err=True)
    code = exit_code_of(error)
    if as_json:
        from syncer.cli.render import print_json

        print_json({"error": {"message": message, "exit_code": code, **({"problems": problems} if problems else {})}})
    return code
