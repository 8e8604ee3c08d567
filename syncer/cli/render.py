"""Turning action reports into text for people, or JSON for programs.

Names come from other people's services and snapshots, so the human report never
prints one raw: a name holding a control character (or a line separator, a
bidirectional override) is shown quoted the way `ls` and bash quote it,
$'esc\033[2Jclear.txt', and such characters in free text (reasons, errors) are
shown as their escapes. `--json` prints names exactly as they are.
"""

import json
import sys
import time
from contextlib import contextmanager

import click

from syncer.cli.common import Settings
from syncer.log import UNPRINTABLE, escape_controls, mask

ITEM_LIMIT = 20


def console():
    from rich.console import Console  # imported when output is rendered: `--json` runs skip rich

    return Console(highlight=False, soft_wrap=True, emoji=False)  # a name's ":x:" is text


def safe_name(name):
    """Return `name` as a terminal may show it: unchanged when every character is
    printable, else quoted as bash's $'...' (with \\ and \' inside)."""
    name = str(name)
    if not UNPRINTABLE.search(name):
        return name
    return "$'" + escape_controls(name.replace("\\", "\\\\").replace("'", "\\'")) + "'"


def safe_text(text, markup=False):
    """Return free text (a reason, an error) with its control characters escaped; with
    `markup`, also with rich's markup escaped, for lines printed with markup on."""
    text = escape_controls(str(text))
    if markup:
        from rich.markup import escape

        text = escape(text)
    return text


def print_json(document):
    """Print `document`; a command whose policy files were partly left out says so in it
    too ("policy_problems", "left_out"), so a script reading only stdout learns why."""
    current = click.get_current_context(silent=True)
    settings = current.find_object(Settings) if current else None
    if settings and settings.policy_problems and isinstance(document, dict) and "error" not in document:
        document = {**document, "policy_problems": [mask(problem) for problem in settings.policy_problems],
                    "left_out": settings.left_out}
    json.dump(document, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def human_bytes(count):
    if count is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024


def human_age(seconds):
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def render_verify(report):
    from rich.table import Table

    out = console()
    for dataset in report["datasets"]:
        if dataset.get("error"):  # logged once, on stderr
            continue
        counts = dataset["counts"]
        table = Table(title=f"{dataset['name']}  ({safe_text(dataset['authority'], markup=True)})",
                      title_justify="left")
        for status in counts:
            table.add_column(status, justify="right")
        table.add_row(*[style_count(status, value) for status, value in counts.items()])
        out.print(table)
        print_items(out, dataset["items"])


def style_count(status, value):
    if not value:
        return "0"
    colour = {"ok": "green", "unverifiable": "yellow"}.get(status, "red")
    return f"[{colour}]{value}[/{colour}]"


STATUS_ACTIONS = ("pull", "verify", "push", "check", "drill", "scrub")


def render_status(report):
    """One row per dataset; a stale action (no completed run within twice its schedule
    interval) is shown in red and listed under the table."""
    rows = report["datasets"]
    actions = [action for action in STATUS_ACTIONS
               if any(action in row["last"] or action in row.get("schedule", {}) for row in rows)]
    from rich.table import Table

    table = Table(title="syncer status", title_justify="left")
    for column in ("dataset", "files", "bytes", "by checksum", "findings", *actions, "RPO",
                   "restore"):
        table.add_column(column)
    stale_lines = []
    for row in rows:
        coverage = row["checksum_coverage"]
        findings = ", ".join(f"{count} {status}" for status, count in row["findings"].items()) or "none"
        cells = [row["name"], str(row["files"]), human_bytes(row["bytes"]),
                 f"{coverage:.0%}" if coverage is not None else "-",
                 f"[red]{findings}[/red]" if row["findings"] else findings]
        cells += [action_cell(row, action) for action in actions]
        snapshot = row.get("newest_snapshot")
        cells.append(human_age(snapshot["age_seconds"]) if snapshot else "none")
        restore = row.get("projected_restore_seconds")
        cells.append(human_duration(restore) if restore is not None else "-")
        table.add_row(*cells)
        for action in row.get("stale", []):
            stale_lines.append(f"[red]stale:[/red] {row['name']} {action} (schedule {row['schedule'][action]!r}): "
                               "no completed run within twice its interval")
    out = console()
    out.print(table)
    for line in stale_lines:
        out.print(line)


def action_cell(row, action):
    last = row["last"].get(action)
    scheduled = action in row.get("schedule", {})
    text = f"{human_age(last['age_seconds'])} {last['result']}" if last else ("never" if scheduled else "-")
    if action in row.get("stale", []):
        return f"[red]{text} (stale)[/red]"
    if last and last["result"] in ("failed", "interrupted"):
        return f"[red]{text}[/red]"
    if last and last["result"] == "findings":
        return f"[yellow]{text}[/yellow]"
    return text


def human_duration(seconds):
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@contextmanager
def progress_reporter(enabled):
    """Yield a callback progress(dataset, files, bytes): a live line on a terminal,
    nothing otherwise (the actions log plain lines of their own)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    started = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("starting")

        def update(dataset, files, hashed_bytes):
            rate = hashed_bytes / max(time.monotonic() - started, 1e-3) / 2**20
            bar.update(task, description=f"{dataset}: {files} files, {human_bytes(hashed_bytes)} hashed "
                                         f"({rate:.0f} MiB/s)")

        yield update


def render_items(dataset, summary):
    """One line per dataset with `summary`, then its items (capped)."""
    out = console()
    if dataset.get("error"):  # logged once, on stderr
        return
    out.print(f"[bold]{dataset['name']}[/bold]: {summary}")
    print_items(out, dataset.get("items", []))


def print_items(out, items):
    """One line per item (status, path, source, reason), the first ITEM_LIMIT of them."""
    for entry in items[:ITEM_LIMIT]:
        reason = f"  ({safe_text(entry['reason'])})" if entry.get("reason") else ""
        source = f" from {entry['source']}" if entry.get("source") else ""
        out.print(f"  {entry['status']:<14} {safe_name(entry['path'])}{source}{reason}", markup=False)
    if len(items) > ITEM_LIMIT:
        out.print(f"  ... and {len(items) - ITEM_LIMIT} more (use --json for the full list)")
