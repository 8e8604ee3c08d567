"""Commands of the status page: `report --html FILE` writes it, `serve` serves it live."""

import logging

import click

from syncer.cli.common import global_options, settings
from syncer.cli.group import cli
from syncer.errors import EXIT_OK, OperationalError

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
