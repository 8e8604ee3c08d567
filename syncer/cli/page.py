"""Commands of the status page: `report --html FILE` writes it, `serve` serves it live."""

import logging

import click

from syncer.cli.common import global_options, settings
from syncer.cli.group import cli
from syncer.errors import EXIT_OK, OperationalError, UsageError

log = logging.getLogger("syncer")


@cli.command()
@global_options
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False),
              help="Write the status page, one self-contained HTML file, here.")
def report(html_path):
    """Write the status page from the state database: every dataset's health, history
    charts, recent failures and open findings. Exit 0 once written (findings are the
    page's content, not its exit code)."""
    from syncer.actions.page import build_page
    from syncer.notify.page import render_page, write_page

    current = settings()
    page = build_page(current.policies(), current.existing_db())
    try:
        write_page(html_path, render_page(page))
    except OSError as error:
        raise OperationalError(f"cannot write the status page {html_path}: {error.strerror or error}")
    log.info("wrote the status page %s", html_path)
    return EXIT_OK


@cli.command()
@global_options
@click.option("--listen", default="127.0.0.1:8473", show_default=True,
              help="HOST:PORT to listen on; anything but loopback needs --token-file.")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="A file (mode 600) holding the token every request must bring, as 'Authorization: Bearer "
                   "TOKEN' or '?token=TOKEN'.")
def serve(listen, token_file):
    """Serve the status page live, with /metrics (the Prometheus text) and /api/status
    (status --json), read-only: GET and HEAD only. Stops on SIGTERM."""
    from pathlib import Path

    from syncer.web import StatusApp, is_loopback, parse_listen
    from syncer.web import serve as serve_forever

    current = settings()
    host, port = parse_listen(listen)
    token = read_token(Path(token_file)) if token_file else None
    if not token and not is_loopback(host):
        raise UsageError(f"--listen {listen} is not loopback: give --token-file FILE (mode 600) so that only "
                         "those with the token can read the page")
    policies = current.policies()
    current.existing_db()  # the page is read from it: say so now if it is not there
    try:
        serve_forever(StatusApp(policies, current.resolved_state_dir(), token, current.resolved_policies_dir()),
                      host, port)
    except OSError as error:
        raise OperationalError(f"cannot listen on {listen}: {error.strerror or error}")
    return EXIT_OK


def read_token(path):
    """Return the token in `path` (its first line), registered as a secret so that no
    log line shows it. Raise CredentialError when the file is missing, readable by
    others or empty."""
    from syncer.errors import CredentialError
    from syncer.log import register_secret
    from syncer.policy.credentials import check_credentials_file, credentials_error

    problem = check_credentials_file(path)
    if problem:
        raise credentials_error(path, problem.replace("credentials file", "token file"))
    try:
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialError(f"token file {path} cannot be read: {error.__class__.__name__}")
    token = lines[0].strip() if lines else ""
    if len(token) < 16:
        raise CredentialError(f"token file {path}: the token must be one line of at least 16 characters")
    register_secret(token)
    return token
