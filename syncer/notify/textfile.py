"""The Prometheus node_exporter textfile: rendered from the status report, written
atomically (a scrape never sees half a file)."""

import math
import os
import tempfile
import time
from pathlib import Path

RESULTS = ("ok", "findings", "failed", "interrupted")
METRICS = {
    "syncer_last_run_timestamp_seconds": ("gauge", "When the last run of an action on a dataset finished."),
    "syncer_last_success_timestamp_seconds": ("gauge", "When an action last completed on a dataset."),
    "syncer_last_run_duration_seconds": ("gauge", "How long the last run of an action took."),
    "syncer_last_run_result": ("gauge", "1 for the result of the last run of an action, 0 for the others."),
    "syncer_stale": ("gauge", "1 when an action has not completed within twice its schedule interval."),
    "syncer_findings": ("gauge", "Open findings of a dataset by category."),
    "syncer_local_files": ("gauge", "Files in the local copy (as indexed)."),
    "syncer_local_bytes": ("gauge", "Bytes in the local copy (as indexed)."),
    "syncer_checksum_coverage_ratio": ("gauge", "Share of the local bytes verified by checksum."),
    "syncer_newest_snapshot_timestamp_seconds": ("gauge", "When the newest offsite snapshot was made."),
    "syncer_newest_snapshot_age_seconds": ("gauge", "Age of the newest offsite snapshot when this file was written."),
    "syncer_copy_snapshot_age_seconds": ("gauge", "Age of the newest snapshot push copied to a copy repository."),
    "syncer_drill_throughput_bytes_per_second": ("gauge", "Restore throughput measured by the last drill."),
    "syncer_projected_restore_seconds": ("gauge", "Projected full-restore time from the last drill's throughput."),
    "syncer_read_data_last_full_timestamp_seconds": ("gauge", "When check last read every pack of the repository "
                                                              "(offsite.read_data's cycle ended without an error)."),
    "syncer_read_data_cycle_done_ratio": ("gauge", "Share of the current offsite.read_data cycle already read."),
    "syncer_textfile_written_timestamp_seconds": ("gauge", "When syncer wrote this file."),
}


def label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def sample(name, labels, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    rendered = ",".join(f'{key}="{label_value(item)}"' for key, item in labels.items())
    return f"{name}{{{rendered}}} {float(value)!r}" if rendered else f"{name} {float(value)!r}"


def render_metrics(report, now=None):
    """Return the textfile for a status report (syncer.actions.status.run_status)."""
    now = now or time.time()
    samples = {name: [] for name in METRICS}

    def add(name, labels, value):
        line = sample(name, labels, value)
        if line:
            samples[name].append(line)

    for row in report["datasets"]:
        dataset = {"dataset": row["name"]}
        for action, last in row.get("last", {}).items():
            labels = {**dataset, "action": action}
            add("syncer_last_run_timestamp_seconds", labels, last.get("at"))
            add("syncer_last_success_timestamp_seconds", labels, last.get("last_success_at"))
            add("syncer_last_run_duration_seconds", labels, last.get("seconds"))
            for result in RESULTS:
                add("syncer_last_run_result", {**labels, "result": result}, int(last.get("result") == result))
        for action in row.get("schedule", {}):
            add("syncer_stale", {**dataset, "action": action}, int(action in row.get("stale", [])))
        for category, count in row.get("findings", {}).items():
            add("syncer_findings", {**dataset, "category": category}, count)
        add("syncer_local_files", dataset, row.get("files"))
        add("syncer_local_bytes", dataset, row.get("bytes"))
        add("syncer_checksum_coverage_ratio", dataset, row.get("checksum_coverage"))
        snapshot = row.get("newest_snapshot") or {}
        add("syncer_newest_snapshot_timestamp_seconds", dataset, snapshot.get("at"))
        add("syncer_newest_snapshot_age_seconds", dataset, snapshot.get("at") and now - snapshot["at"])
        for copy in row.get("copies", []):
            add("syncer_copy_snapshot_age_seconds", {**dataset, "repository": copy["repository"]},
                copy["at"] and now - copy["at"])
        drill = row.get("drill") or {}
        throughput = drill.get("throughput_mib_s")
        add("syncer_drill_throughput_bytes_per_second", dataset, throughput and throughput * 2**20)
        add("syncer_projected_restore_seconds", dataset, drill.get("projected_restore_seconds"))
        read_data = row.get("read_data") or {}
        add("syncer_read_data_last_full_timestamp_seconds", dataset, read_data.get("last_full_read_at"))
        add("syncer_read_data_cycle_done_ratio", dataset, read_data.get("cycle_done"))
    add("syncer_textfile_written_timestamp_seconds", {}, now)
    lines = []
    for name, (kind, help_text) in METRICS.items():
        if samples[name]:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples[name]]
    return "\n".join(lines) + "\n"


def write_textfile(path, text):
    """Write `text` to `path` atomically: a temporary file beside it, fsynced, renamed.
    node_exporter ignores files not ending in .prom, so the temporary name is safe."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
