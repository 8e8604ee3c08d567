"""scrub and repair: find bit rot, and replace bad files with copies proven good."""

import click

from syncer.cli.common import global_options, json_option, settings
from syncer.cli.group import cli


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@click.option("--fraction", help="Share of each dataset to re-read, like 5% [default: policy scrub.fraction or 5%].")
@click.option("--rate", "rate_mib_s", type=click.FloatRange(min=0.01),
              help="Read at most this many MiB/s [default: policy scrub.rate_mib_s or unlimited].")
@json_option
def scrub(datasets, fraction, rate_mib_s, as_json):
    """Re-read a slice of each dataset, oldest-confirmed first, and catch bit rot (exit 1 if found)."""
    from syncer.actions.scrub import run_scrub
    from syncer.cli.render import print_json, render_items

    current = settings()
    report = run_scrub(current.policies(datasets), current.db(), fraction, rate_mib_s)
    if as_json:
        print_json(report)
    else:
        for dataset in report["datasets"]:
            summary = ", ".join(f"{count} {name}" for name, count in dataset.get("counts", {}).items())
            coverage = dataset.get("confirmed_share_30d")
            share = f"; {coverage:.0%} of the bytes confirmed good in the last 30 days" if coverage is not None else ""
            render_items(dataset, f"{summary}{share}")
    return report["datasets"]


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Say what would be repaired, change nothing.")
@json_option
def repair(datasets, dry_run, as_json):
    """Replace corrupt and missing files with copies proven good (authority, then offsite)."""
    from syncer.actions.repair import run_repair
    from syncer.actions.repair_offsite import snapshot_copies
    from syncer.cli.render import print_json, render_items

    current = settings()
    report = run_repair(current.policies(datasets), current.db(), dry_run=dry_run, offsite_source=snapshot_copies)
    if as_json:
        print_json(report)
    else:
        for dataset in report["datasets"]:
            counts = {}
            for item in dataset.get("items", []):
                counts[item["status"]] = counts.get(item["status"], 0) + 1
            wanted = ("would_repair", "unrecoverable", "skipped") if dry_run else \
                ("repaired", "unrecoverable", "refused", "skipped")
            summary = ", ".join(f"{counts.get(status, 0)} {status.replace('_', ' ')}" for status in wanted
                                if counts.get(status) or status not in ("refused", "skipped"))
            render_items(dataset, f"dry run (nothing changed): {summary}" if dry_run else summary)
    return report["datasets"]
