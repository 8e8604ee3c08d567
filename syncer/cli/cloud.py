"""Commands that talk to the authoritative copies: pull."""

import click

from syncer.cli.common import global_options, json_option, settings
from syncer.cli.group import cli
from syncer.cli.render import console, print_items, print_json, safe_text


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show what would be downloaded or moved; change nothing.")
@json_option
def pull(datasets, dry_run, as_json):
    """Bring local copies up to date from their authoritative copies.

    Downloads what is missing or changed (checked against the authority's checksum
    before it replaces anything), reports local-only files, or moves them to the
    trash in the state directory with `pull: {delete: true}`. GitLab projects are
    mirrored with git. Exit 1 when a file failed its checksum, a remote name was
    refused or local-only files remain.
    """
    from syncer.actions.pull import run_pull

    current = settings()
    report = run_pull(current.policies(datasets), current.db(), dry_run=dry_run)
    print_json(report) if as_json else render_pull(report)
    return report["datasets"]


def render_pull(report):
    out = console()
    for dataset in report["datasets"]:
        if dataset.get("error"):  # logged once, on stderr
            continue
        counts = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in dataset["counts"].items())
        suffix = " (dry run)" if dataset.get("dry_run") else ""
        out.print(f"[bold]{dataset['name']}[/bold]  ({safe_text(dataset['authority'], markup=True)}){suffix}: "
                  f"{counts or 'nothing to do'}")
        print_items(out, dataset["items"])
        if dataset.get("items_left_off"):  # a report keeps a bounded number of items (common.ItemTally)
            out.print(f"  another {dataset['items_left_off']} items are counted above but not listed, "
                      "not even by --json")


def restore_to_cloud(current, policy, target, snapshot, includes, dry_run, credentials_file, endpoint_url, as_json,
                     delete=False):
    """`restore DATASET --to cloud|s3://...` (hooked into the offsite `restore` command)."""
    from syncer.actions.restore_cloud import run_restore_cloud

    report = run_restore_cloud(policy, current.db(), target, snapshot, includes, dry_run, credentials_file,
                               endpoint_url, delete)
    if as_json:
        print_json(report)
    elif not report.get("error"):  # a refusal was logged once, on stderr
        render_pull({"datasets": [dict(report, authority=report["target"])]})
    return [report]
