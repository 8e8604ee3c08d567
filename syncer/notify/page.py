"""The status page: one self-contained HTML file from syncer.actions.page's data.

No external assets and no script: styles are inline, charts are inline SVG, and each
chart has its numbers in a table beside it (for screen readers and for copying).
Every string that reaches the page (dataset names, paths, errors, schedules) goes
through `escape`; a finding named `<script>alert(1)</script>.jpg` is text. The layout
reads at 375 px: on a narrow screen the overview, failures and findings become one card a row.
The page is written atomically with mode 0644 (readable by the board's web server
whatever the writer's umask).
"""

import io
import time
from html import escape as html_escape
from pathlib import Path

from syncer.fsio import write_file
from syncer.log import human_bytes

STATE_COLOURS = {"ok": "#1a7f37", "findings": "#9a6700", "stale": "#bc4c00", "failing": "#cf222e"}
CHART_WIDTH, CHART_HEIGHT = 480, 150
LEFT, RIGHT, TOP, BOTTOM = 76, 8, 14, 26
MAX_BAR = 28
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
background:#fff;margin:0 auto;padding:1rem;max-width:72rem}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa}.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.state{font-weight:600;white-space:nowrap}
.dot{display:inline-block;width:.75em;height:.75em;border-radius:50%;margin-right:.35em}
.small{color:#59636e;font-size:.85em}.path{overflow-wrap:anywhere}
.numbers{max-height:14rem;overflow:auto;margin-top:.3rem}
figure{margin:.5rem 0 1.2rem}figcaption{font-weight:600}svg{width:100%;height:auto;max-width:34rem;display:block}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,26rem),1fr));gap:0 2rem}
caption{text-align:left}
ul.runs{margin:0;padding-left:1rem}footer{margin-top:2rem;color:#59636e;font-size:.85rem}
@media (max-width:40rem){
body{padding:.6rem}table.cards thead{display:none}
table.cards tr{display:block;border:1px solid #d0d7de;border-radius:6px;margin-bottom:.8rem}
table.cards td{display:flex;gap:.8rem;border:none}
table.cards td::before{content:attr(data-label);flex:0 0 6.5rem;font-weight:600;color:#59636e}
table.cards td>div{flex:1;min-width:0}table.cards ul.runs{list-style:none;padding:0}
}
"""


def escape(value):
    return html_escape(str(value), quote=True)


def render_page(page):
    """Return the HTML of the page for `page` (syncer.actions.page.build_page)."""
    datasets = page["datasets"]
    states = {}
    for dataset in datasets:
        states[dataset["state"]] = states.get(dataset["state"], 0) + 1
    summary = ", ".join(f"{count} {state}" for state, count in states.items()) or "no datasets"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>syncer status: {escape(summary)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        "<header><h1>syncer status</h1>",
        f'<p>{len(datasets)} dataset{"" if len(datasets) == 1 else "s"}: {escape(summary)}</p></header>',
        "<main>", overview(datasets, page["written_at"]),
        failures_section(page["failures"]), findings_section(page["findings"]),
    ]
    for dataset in datasets:
        parts.append(history_section(dataset, page["history_days"]))
    parts += ["</main>",
              f"<footer>Written {escape(utc(page['written_at'], seconds=True))} by syncer "
              f"{escape(page['version'])}.</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)


def write_page(path, text):
    """Write the page at `path` atomically (temporary file, fsync, rename, folder
    fsync) with mode 0644, whatever the umask; folders it has to make are 0755, so that
    the web server can reach the page. Raise OSError from the disk."""
    path = Path(path)
    missing, folder = [], path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)
    data = text.encode("utf-8")
    write_file(path.parent, path.name, lambda: io.BytesIO(data), mode=0o644)


# --- the overview --------------------------------------------------------------

def overview(datasets, now):
    header = ("Dataset", "State", "Local size", "Checksum coverage", "Open findings", "Recovery point",
              "Last drill", "Runs")
    rows = []
    for dataset in datasets:
        row = dataset["status"]
        cells = [
            f'<a href="#dataset-{escape(row["name"])}">{escape(row["name"])}</a>'
            f'<br><span class="small path">{escape(row["path"])}</span>',
            state_badge(dataset["state"]),
            f'{escape(human_bytes(row["bytes"]))}<br><span class="small">{row["files"]} files</span>',
            coverage_cell(row),
            str(sum(row["findings"].values())) + (f'<br><span class="small">{escape(findings_text(row))}</span>'
                                                  if row["findings"] else ""),
            recovery_cell(row),
            drill_cell(row),
            runs_cell(dataset["runs"], now),
        ]
        rows.append(cells)
    return f"<section><h2>Overview</h2>{card_table('overview', header, rows)}</section>"


def card_table(name, header, rows):
    """A table (`rows` of cells, already HTML) that becomes one card per row on a narrow
    screen, each cell under its column's label."""
    body = "".join("<tr>" + "".join(f'<td data-label="{escape(label)}"><div>{cell}</div></td>'
                                    for label, cell in zip(header, cells)) + "</tr>" for cells in rows)
    head = "".join(f"<th>{escape(label)}</th>" for label in header)
    return f'<table class="{name} cards"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def state_badge(state):
    return (f'<span class="state" style="color:{STATE_COLOURS[state]}"><span class="dot" '
            f'style="background:{STATE_COLOURS[state]}"></span>{escape(state)}</span>')


def coverage_cell(row):
    coverage, scrub = row["checksum_coverage"], row.get("scrub_confirmed_30d")
    text = escape(percent(coverage)) + " by checksum"
    if scrub is not None:
        text += f'<br><span class="small">{escape(percent(scrub))} confirmed by scrub in 30 days</span>'
    return text


def findings_text(row):
    return ", ".join(f"{count} {status}" for status, count in row["findings"].items())


def recovery_cell(row):
    snapshot = row.get("newest_snapshot")
    if not snapshot:
        return "no snapshot yet"
    return (f'{escape(human_duration(snapshot["age_seconds"]))} old<br>'
            f'<span class="small">{escape(utc(snapshot["at"]))}</span>')


def drill_cell(row):
    drill = row.get("drill")
    if not drill:
        return "no drill yet"
    verdict = {True: "passed", False: "failed"}.get(drill.get("passed"), drill["result"])
    text = f"{escape(verdict)}, {escape(utc(drill['at']))}"
    if drill.get("throughput_mib_s"):
        text += f'<br><span class="small">{drill["throughput_mib_s"]:.1f} MiB/s</span>'
    projected = drill.get("projected_restore_seconds")
    if projected is not None:
        text += f"<br>projected restore {escape(human_duration(projected))}"
    return text


def runs_cell(runs, now):
    if not runs:
        return "none"
    items = []
    for run in runs:
        last = (f"{escape(run['result'])} {escape(utc(run['last_at']))}" if run["last_at"] else "never ran")
        following = f"; next {escape(utc(run['next_at']))}" if run["next_at"] else ""
        schedule = f' <span class="small">({escape(run["schedule"])})</span>' if run["schedule"] else ""
        items.append(f"<li><b>{escape(run['action'])}</b>: {last}{following}{schedule}</li>")
    return '<ul class="runs">' + "".join(items) + "</ul>"


# --- failures and findings -------------------------------------------------------

def failures_section(failures):
    if not failures["runs"]:
        return "<section><h2>Recent failures</h2><p>None in the history shown.</p></section>"
    rows = [[escape(utc(run["at"])), escape(run["dataset"]), escape(run["action"]), escape(run["result"]),
             f'<span class="path">{escape(run["error"] or "")}</span>'] for run in failures["runs"]]
    more = f"<p>and {failures['more']} earlier.</p>" if failures["more"] else ""
    table = card_table("failures", ("Finished (UTC)", "Dataset", "Action", "Result", "Message"), rows)
    return f"<section><h2>Recent failures</h2>{table}{more}</section>"


def findings_section(findings):
    if not findings["items"]:
        return "<section><h2>Open findings</h2><p>None.</p></section>"
    rows = [[escape(item["dataset"]), escape(item["status"]), f'<span class="path">{escape(item["path"])}</span>',
             escape(item["reason"] or "")] for item in findings["items"]]
    more = f"<p>and {findings['more']} more (syncer verify --json lists them all).</p>" if findings["more"] else ""
    table = card_table("findings", ("Dataset", "Status", "Path", "Reason"), rows)
    return f"<section><h2>Open findings</h2>{table}{more}</section>"


# --- history charts --------------------------------------------------------------

def history_section(dataset, days):
    name = dataset["status"]["name"]
    history = dataset["history"]
    per_day = history["per_day"]
    parts = [f'<section id="dataset-{escape(name)}"><h2>{escape(name)}: the last {days} days</h2>',
             '<div class="charts">',
             figure("Verify findings", history["verify"], per_day.get("verify"),
                    [("findings", "Findings", "#cf222e", "bars", str)]),
             figure("Push: bytes added and duration", history["push"], per_day.get("push"),
                    [("bytes_added", "Bytes added", "#0969da", "bars", human_bytes),
                     ("seconds", "Duration", "#8250df", "line", human_duration)]),
             figure("Drill: throughput and projected restore", history["drill"], per_day.get("drill"),
                    [("throughput_mib_s", "Throughput (MiB/s)", "#1a7f37", "line", lambda value: f"{value:.1f}"),
                     ("projected_restore_seconds", "Projected restore", "#bc4c00", "line", human_duration)]),
             figure("Checksum and scrub coverage", history["coverage"], per_day.get("coverage"),
                    [("checksum", "By checksum", "#0969da", "line", percent),
                     ("scrub", "Confirmed by scrub (30 days)", "#1a7f37", "line", percent)], shared_scale=1.0),
             "</div></section>"]
    return "\n".join(parts)


def figure(title, points, per_day, series, shared_scale=None):
    """A chart per series (one chart for all when they share `shared_scale`), then
    their numbers in a table, newest first."""
    if not points:
        return f"<figure><figcaption>{escape(title)}</figcaption><p>No completed runs in this period.</p></figure>"
    charts = ([svg_chart(points, series, shared_scale, title)] if shared_scale
              else [svg_chart(points, [one], None, f"{title}: {one[1]}") for one in series])
    if shared_scale:  # the lines' colours, said above the chart
        charts.insert(0, '<p class="small">' + " ".join(f'<span style="color:{colour}">■</span> {escape(label)}'
                                                          for _, label, colour, _, _ in series) + "</p>")
    unit = "one row per UTC day (push: the day's totals; else the day's last run)" if per_day else "one row per run"
    head = "".join(f"<th>{escape(label)}</th>" for _, label, _, _, _ in series)
    rows = "".join(
        f"<tr><td>{escape(utc(point['at']))}</td>"
        + "".join(f'<td class="n">{escape(show(point.get(key), formatter))}</td>' for key, _, _, _, formatter in series)
        + "</tr>" for point in reversed(points))
    return (f"<figure><figcaption>{escape(title)}</figcaption>{''.join(charts)}"
            f'<div class="numbers"><table class="history"><caption class="small">{escape(unit)}</caption>'
            f"<thead><tr><th>Time (UTC)</th>{head}</tr></thead><tbody>{rows}</tbody></table></div></figure>")


def show(value, formatter):
    return "-" if value is None else formatter(value)


def svg_chart(points, series, scale, title):
    """An inline SVG chart of `points` (oldest first), evenly spaced: bars or a line per
    series, the top of the scale and the first and last time as labels."""
    plot_width, plot_height = CHART_WIDTH - LEFT - RIGHT, CHART_HEIGHT - TOP - BOTTOM
    values = [point.get(key) for point in points for key, *_ in series]
    top = scale or max([value for value in values if value is not None] + [0]) or 1
    slot = plot_width / len(points)
    shapes = []
    for key, label, colour, kind, formatter in series:
        if kind == "bars":
            for index, point in enumerate(points):
                value = point.get(key) or 0
                height = max(plot_height * value / top, 1.5 if value else 0)  # a small value stays seen
                width = min(max(slot * 0.8, 1), MAX_BAR)
                shapes.append(f'<rect x="{LEFT + (index + 0.5) * slot - width / 2:.1f}" '
                              f'y="{TOP + plot_height - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
                              f'fill="{colour}"><title>{escape(utc(point["at"]))}: {escape(show(value, formatter))}'
                              "</title></rect>")
            continue
        line = []
        for index, point in enumerate(points):
            value = point.get(key)
            if value is None:
                continue
            line.append(f"{LEFT + (index + 0.5) * slot:.1f},{TOP + plot_height * (1 - value / top):.1f}")
        if len(line) == 1:
            x, y = line[0].split(",")
            shapes.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>')
        elif line:
            shapes.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{colour}" stroke-width="2">'
                          f"<title>{escape(label)}</title></polyline>")
    labels = [
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(series[0][4](top))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_height}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{CHART_HEIGHT - 6}">{escape(utc(points[0]["at"]))}</text>',
        f'<text x="{CHART_WIDTH - RIGHT}" y="{CHART_HEIGHT - 6}" text-anchor="end">{escape(utc(points[-1]["at"]))}'
        "</text>",
    ]
    return (f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="{escape(title)}; the numbers '
            f'are in the table below" font-size="14" font-family="system-ui,sans-serif" fill="#59636e">'
            f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{CHART_WIDTH - RIGHT}" y2="{TOP + plot_height}" '
            f'stroke="#d0d7de"/><line x1="{LEFT}" y1="{TOP}" x2="{CHART_WIDTH - RIGHT}" y2="{TOP}" '
            f'stroke="#eaeef2" stroke-dasharray="4 4"/>{"".join(shapes)}{"".join(labels)}</svg>')


# --- numbers as people read them -------------------------------------------------

def utc(timestamp, seconds=False):
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def percent(share):
    return "-" if share is None else f"{share:.1%}"


def human_duration(seconds):
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"
