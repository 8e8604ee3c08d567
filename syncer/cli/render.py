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
from syncer.log import UNPRINTABLE, escape_controls, human_bytes, mask

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
    if isinstance(document, dict) and "error" not in document:
        document = {**document, **policy_problem_keys()}
    json.dump(document, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def policy_problem_keys():
    """{"policy_problems", "left_out"} when policy files were left out, else {}."""
    current = click.get_current_context(silent=True)
    settings = current.find_object(Settings) if current else None
    if not (settings and settings.policy_problems):
        return {}
    return {"policy_problems": [mask(problem) for problem in settings.policy_problems],
            "left_out": settings.left_out}


def print_json_streamed(report):
    """Print `report`, {"datasets": [...]}, as print_json would, but write each dataset's
    "items" (an iterator) one at a time as they come: a million of them are never held."""
    out = sys.stdout
    out.write('{\n  "datasets": [')
    for number, dataset in enumerate(report["datasets"]):
        head = json.dumps({key: value for key, value in dataset.items() if key != "items"}, default=str)
        out.write(("," if number else "") + "\n    " + head[:-1] + (", " if len(head) > 2 else "") + '"items": [')
        for count, item in enumerate(dataset.get("items", ())):
            out.write(("," if count else "") + "\n      " + json.dumps(item, default=str))
        out.write("\n    ]}")
    out.write("\n  ]")
    for key, value in policy_problem_keys().items():
        out.write(f",\n  {json.dumps(key)}: {json.dumps(value, default=str)}")
    out.write("\n}\n")


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
        if dataset.get("items_left_off"):  # a report lists a bounded number of items (common.ItemTally)
            out.print(f"  another {dataset['items_left_off']} items are counted above but not listed, not even by "
                      f"--json: `syncer findings {dataset['name']}` lists every one")


def style_count(status, value):
    if not value:
        return "0"
    colour = {"ok": "green", "unverifiable": "yellow"}.get(status, "red")
    return f"[{colour}]{value}[/{colour}]"


STATUS_ACTIONS = ("pull", "verify", "push", "check", "drill", "scrub")
STATE_COLOURS = {"ok": "green", "findings": "yellow", "stale": "yellow", "failing": "red"}
# (header, width, right-aligned) of the columns after the dataset's name: one line per
# dataset fits 80 columns with a name of up to 16 characters (longer names are cut).
STATUS_COLUMNS = (("state", 8, False), ("size", 10, True), ("checksum", 8, True), ("findings", 8, True),
                  ("recovery pt", 11, True), ("restore", 7, True))
COLUMN_GAP = "  "


def render_status(report):
    """One line per dataset (state word, size, checksum coverage, findings, the recovery
    point's age, the projected restore time) that fits the terminal's width, then each
    dataset's details as "label: value" lines, the way `systemctl status` shows a unit."""
    from rich.text import Text

    from syncer.actions.status import dataset_state

    out = console()
    rows = report["datasets"]
    fixed = sum(width for _, width, _ in STATUS_COLUMNS) + len(COLUMN_GAP) * len(STATUS_COLUMNS)
    longest = max([len("dataset")] + [len(safe_name(row["name"])) for row in rows])
    name_width = max(8, min(longest, out.width - fixed))

    def line(name, cells, state_style=""):
        text = Text(name)
        text.truncate(name_width, overflow="ellipsis", pad=True)
        for number, ((_, width, right), cell) in enumerate(zip(STATUS_COLUMNS, cells)):
            text.append(COLUMN_GAP)
            text.append(cell.rjust(width) if right else cell.ljust(width), style=state_style if number == 0 else "")
        return text

    out.print(line("dataset", [header for header, _, _ in STATUS_COLUMNS], "bold"), style="bold")
    for row in rows:
        state = dataset_state(row)
        out.print(line(safe_name(row["name"]), status_cells(row, state), STATE_COLOURS[state]))
    for row in rows:
        out.print()
        state = dataset_state(row)
        colour = STATE_COLOURS[state]
        out.print(Text.assemble(("● ", colour), safe_name(row["name"]), " - ", (state, colour)))
        details = [pair for describe in STATUS_DETAILS for pair in describe(row)]
        label_width = max((len(label) for label, _ in details), default=0)
        for label, value in details:
            out.print(f"  {label.rjust(label_width)}: {safe_text(value)}", markup=False, highlight=False)


def status_cells(row, state):
    coverage = row["checksum_coverage"]
    snapshot = row.get("newest_snapshot")
    restore = row.get("projected_restore_seconds")
    return [state, human_bytes(row["bytes"]), f"{coverage:.0%}" if coverage is not None else "-",
            str(sum(row["findings"].values())), human_age(snapshot["age_seconds"]) if snapshot else "none",
            human_duration(restore) if restore is not None else "-"]


# The details under the table: each function takes a status row and returns its
# (label, value) lines, plain text, none when it has nothing to say. A field added to
# the status report gets its line by adding a function here.
def files_details(row):
    coverage = row["checksum_coverage"]
    scrub = row.get("scrub_confirmed_30d")
    shares = [f"{coverage:.1%} by checksum" if coverage is not None else "none by checksum"]
    shares += [f"{scrub:.1%} confirmed by scrub in 30 days"] if scrub is not None else []
    return [("path", safe_name(row["path"])), ("size", f"{row['files']} files, {human_bytes(row['bytes'])}"),
            ("coverage", ", ".join(shares))]


def findings_details(row):
    return [("findings", ", ".join(f"{count} {status}" for status, count in row["findings"].items()) or "none")]


def recovery_details(row):
    snapshot = row.get("newest_snapshot")
    if not snapshot:
        return [("snapshot", "none yet")]
    name = f"{snapshot['id'][:8]}, " if snapshot.get("id") else ""
    return [("snapshot", f"{name}{human_age(snapshot['age_seconds'])} ({utc_time(snapshot['at'])})")]


def drill_details(row):
    drill = row.get("drill")
    if not drill:
        return []
    verdict = {True: "passed", False: "failed"}.get(drill.get("passed"), drill["result"])
    throughput = drill.get("throughput_mib_s")
    projected = drill.get("projected_restore_seconds")
    text = f"drill {verdict} {utc_time(drill['at'])}"
    text += f", {throughput:.1f} MiB/s" if throughput else ""
    text += f"; projected full restore {human_duration(projected)}" if projected is not None else ""
    return [("restore", text)]


def action_details(row):
    lines = []
    for action in STATUS_ACTIONS:
        last, expression = row["last"].get(action), row.get("schedule", {}).get(action)
        if not last and not expression:
            continue
        text = (f"{last['result']} {human_age(last['age_seconds'])} in {human_duration(last['seconds'])}"
                if last else "never ran")
        text += f"; schedule {expression!r}" if expression else ""
        text += f"; error: {last['error']}" if last and last.get("error") else ""
        lines.append((action, text))
    return lines


def stale_details(row):
    return [("stale", f"{action} (schedule {row['schedule'][action]!r}): no completed run within twice its "
                      "interval") for action in row.get("stale", [])]


def copies_details(row):
    """Each copy's recovery point (offsite.copies): its newest snapshot's age."""
    lines = []
    for copy in row.get("copies", []):
        age = human_age(copy["age_seconds"]) if copy["age_seconds"] is not None else "no snapshot copied yet"
        failed = f"; last copy failed: {copy['last_error']}" if copy.get("last_error") else ""
        lines.append(("copy", f"{copy['repository']}: newest snapshot {age}{failed}"))
    return lines


def read_data_details(row):
    """offsite.read_data's cycle: how much of it is read, and when every pack last was."""
    read_data = row.get("read_data")
    if not read_data:
        return []
    last = read_data["last_full_read_at"]
    full = f"every pack last read {human_age(time.time() - last)}" if last else "no full cycle yet"
    return [("read data", f"{read_data['slices_read']}/{read_data['slices']} of this cycle; {full}")]


def restic_details(row):
    restic = row.get("restic_peak_rss")
    if not restic:
        return []
    over = ", over half of this machine's memory" if restic["over_half_of_memory"] else ""
    return [("restic", f"peak memory {restic['bytes'] / 2**20:.0f} MiB ({restic['action']}){over}")]


STATUS_DETAILS = [files_details, findings_details, recovery_details, copies_details, drill_details, action_details,
                  stale_details, read_data_details, restic_details]


def utc_time(timestamp):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


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


def render_findings(report):
    """Per dataset a line of its counts and when its last verify finished, then every
    item, one a line, written as they come (plainly: rich's layout of each of a million
    lines would take minutes)."""
    out = console()
    for dataset in report["datasets"]:
        if dataset["verified_at"] is None and not dataset["counts"]:
            out.print(f"[bold]{dataset['name']}[/bold]: never verified (`syncer verify {dataset['name']}`)")
            continue
        counts = ", ".join(f"{count} {status}" for status, count in dataset["counts"].items()) or "no findings"
        when = (f"verify of {time.strftime('%Y-%m-%d %H:%M', time.localtime(dataset['verified_at']))}"
                if dataset["verified_at"] is not None else "no verify has completed")
        out.print(f"[bold]{dataset['name']}[/bold]: {counts} ({when})")
        for entry in dataset["items"]:
            sys.stdout.write(item_line(entry) + "\n")
        sys.stdout.flush()


def render_items(dataset, summary):
    """One line per dataset with `summary`, then its items (capped)."""
    out = console()
    if dataset.get("error"):  # logged once, on stderr
        return
    out.print(f"[bold]{dataset['name']}[/bold]: {summary}")
    print_items(out, dataset.get("items", []))


def item_line(entry):
    """One report item as a line: status, path, where it came from, why."""
    reason = f"  ({safe_text(entry['reason'])})" if entry.get("reason") else ""
    source = f" from {entry['source']}" if entry.get("source") else ""
    return f"  {entry['status']:<14} {safe_name(entry['path'])}{source}{reason}"


def print_items(out, items):
    """One line per item (status, path, source, reason), the first ITEM_LIMIT of them."""
    for entry in items[:ITEM_LIMIT]:
        out.print(item_line(entry), markup=False)
    if len(items) > ITEM_LIMIT:
        out.print(f"  ... and {len(items) - ITEM_LIMIT} more (use --json for the full list)")
