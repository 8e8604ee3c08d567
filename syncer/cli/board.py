"""Setting syncer up on a machine: `syncer doctor`, `syncer auth`."""

import sys
import typing
from pathlib import Path

import click

from syncer.cli.common import global_options, json_option, settings
from syncer.cli.group import cli
from syncer.errors import SyncerError, UsageError
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


@cli.group()
def auth():
    """Obtain an authority's credentials and store them (mode 600), checked first.

    A refused key or token is one message and exit 3; the credentials file is then
    left as it was. Secrets are never printed or logged.
    """


def terminal():
    return sys.stdin.isatty()


def find_smugmug_policy(current, dataset, credentials_file):
    """Return the SmugMug policy named `dataset`, or else the one whose authority names
    `credentials_file`, or None."""
    from syncer.policy import read_policies

    if dataset:
        policy = current.policies([dataset])[0]
        if policy.authority.type != "smugmug":
            raise UsageError(f"dataset {dataset} has a {policy.authority.type} authority, not smugmug "
                             f"(syncer auth {policy.authority.type} {dataset})")
        return policy
    try:
        policies, _ = read_policies(current.existing_policies_dir())
    except SyncerError:
        return None
    wanted = Path(credentials_file).absolute()
    return next((policy for policy in policies if policy.authority.type == "smugmug"
                 and Path(policy.authority.credentials).absolute() == wanted), None)


@auth.command("smugmug")
@global_options
@click.argument("dataset", required=False)
@click.option("--credentials", "credentials_file", type=click.Path(dir_okay=False),
              help="The credentials file to write (default: the dataset's authority.credentials).")
@click.option("--permissions", type=click.Choice(("read", "add", "modify")), default="read", show_default=True,
              help="What syncer may do on SmugMug; modify is needed for restore to the cloud.")
@click.option("--verifier", metavar="PIN", help="The 6-digit code SmugMug shows once you authorized syncer "
                                                "(asked on the terminal otherwise).")
def auth_smugmug(dataset, credentials_file, permissions, verifier):
    """Authorize syncer on SmugMug (OAuth 1.0a, out of band) and store the four keys.

    The API key and secret are read from the credentials file, or asked on the
    terminal; the URLs come from the policy's api_url.
    """
    from syncer.actions.auth import authorize_smugmug
    from syncer.policy.credentials import read_credentials

    current = settings()
    if not dataset and not credentials_file:
        raise UsageError("name a SmugMug DATASET or give --credentials FILE")
    if not verifier and not terminal():
        raise UsageError("no terminal to read SmugMug's code from: give it with --verifier PIN")
    policy = find_smugmug_policy(current, dataset, credentials_file)
    path = Path(credentials_file) if credentials_file else policy.authority.credentials
    api_url = policy.authority.api_url if policy else None
    existing = read_credentials(path) if path.exists() else {}
    api_key, api_secret = existing.get("SMUGMUG_API_KEY"), existing.get("SMUGMUG_API_SECRET")
    if not (api_key and api_secret):
        if not terminal():
            raise UsageError(f"{path} lacks SMUGMUG_API_KEY or SMUGMUG_API_SECRET and there is no terminal to "
                             "ask for them: write them into the file first")
        api_key = click.prompt("SmugMug API key", hide_input=True, err=True)
        api_secret = click.prompt("SmugMug API secret", hide_input=True, err=True)

    def get_verifier(url):
        click.echo("Open this address, sign in to SmugMug and authorize syncer:", err=True)
        click.echo(f"  {url}", err=True)
        return verifier or click.prompt("The 6-digit code SmugMug shows", err=True).strip()

    detail = authorize_smugmug(path, api_url, api_key, api_secret, permissions, get_verifier)
    click.echo(f"SmugMug accepted the token ({detail}); stored SMUGMUG_API_KEY, SMUGMUG_API_SECRET, SMUGMUG_TOKEN "
               f"and SMUGMUG_TOKEN_SECRET in {path} (mode 600)")


def read_secrets(keys):
    """Return {key: value} read from the terminal without echo, or one line per key from
    standard input when it is not a terminal. Raise UsageError when a value is missing."""
    values = {}
    for key in keys:
        if terminal():
            value = click.prompt(key, hide_input=True, err=True)
        else:
            value = sys.stdin.readline().strip()
        if not value.strip():
            raise UsageError(f"no value for {key} (one line per key on standard input: {', '.join(keys)})")
        values[key] = value.strip()
    return values


def authority_models():
    """The authority models of the policy: each `type` with the keys its credentials hold."""
    from syncer.policy.model import Authority

    union = typing.get_args(Authority)[0]
    return {typing.get_args(model.model_fields["type"].annotation)[0]: model for model in typing.get_args(union)}


def add_token_command(authority_type, keys):
    """`syncer auth TYPE DATASET` for an authority whose credentials are plain keys."""

    @auth.command(authority_type, help=f"Store {', '.join(keys)} of a {authority_type} dataset, once the service "
                                       "accepted them.\n\nRead from the terminal without echo, or one line per key "
                                       "from standard input when it is not a terminal.")
    @global_options
    @click.argument("dataset")
    def command(dataset):
        from syncer.actions.auth import store_credentials

        policy = settings().policies([dataset])[0]
        if policy.authority.type != authority_type:
            raise UsageError(f"dataset {dataset} has a {policy.authority.type} authority, not {authority_type}")
        detail = store_credentials(policy, read_secrets(keys))
        click.echo(f"{policy.authority.type} accepted the credentials ({detail}); stored {', '.join(keys)} in "
                   f"{policy.authority.credentials} (mode 600)")

    return command


for _type, _model in authority_models().items():
    if _model.credential_keys and _type != "smugmug":  # SmugMug's tokens come from OAuth, above
        add_token_command(_type, _model.credential_keys)


@cli.command()
@click.argument("shell", type=click.Choice(("bash", "zsh", "fish")))
def completion(shell):
    """Print the shell completion script of syncer for SHELL (click's shell completion).

    Commands, options and dataset names (read from the policies) complete. Install it
    with, for bash: syncer completion bash > /etc/bash_completion.d/syncer
    """
    from click.shell_completion import get_completion_class

    click.echo(get_completion_class(shell)(cli, {}, "syncer", "_SYNCER_COMPLETE").source())
    return 0


def complete_datasets(ctx, param, incomplete):
    """The dataset names of the policies (--policies or SYNCER_POLICIES, else the
    default) that start with what was typed; none when the policies cannot be read."""
    from click.shell_completion import CompletionItem

    from syncer.cli.common import Settings
    from syncer.policy import read_policies

    current = ctx.find_object(Settings) or Settings()
    try:
        policies, _ = read_policies(current.resolved_policies_dir())
    except SyncerError:
        return []
    return [CompletionItem(policy.name) for policy in policies if policy.name.startswith(incomplete)]


def complete_dataset_arguments(group):
    """Make every DATASET argument of every command below `group` complete dataset names."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            complete_dataset_arguments(command)
        for parameter in command.params:
            if isinstance(parameter, click.Argument) and parameter.name in ("dataset", "datasets"):
                parameter._custom_shell_complete = complete_datasets
