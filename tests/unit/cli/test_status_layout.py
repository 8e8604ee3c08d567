"""`syncer status` in a terminal: one line per dataset that fits 80 columns, then the
details as "label: value" lines."""

import pytest

from syncer.cli.render import STATUS_DETAILS, render_status

NOW = 1_800_000_000


def row(name, **changes):
    base = {
        "name": name, "path": f"/srv/{name}", "files": 1234, "bytes": 5 * 2**30, "checksum_coverage": 0.9871,
        "scrub_confirmed_30d": 0.25, "findings": {"changed": 2, "missing_local": 3},
        "last": {"verify": {"at": NOW - 3600, "age_seconds": 3600, "result": "findings", "seconds": 12.5,
                            "last_success_at": NOW - 3600},
                 "push": {"at": NOW - 7200, "age_seconds": 7200, "result": "failed", "seconds": 3.0,
                          "last_success_at": None, "error": "restic: repository is locked"}},
        "schedule": {"verify": "0 * * * *", "drill": "0 3 * * 0"}, "stale": ["drill"], "unavailable": [],
        "newest_snapshot": {"at": NOW - 90000, "age_seconds": 90000, "id": "455f9070abcdef"},
        "rpo_seconds": 90000, "drill": {"at": NOW - 86400 * 3, "result": "ok", "passed": True,
                                        "throughput_mib_s": 91.1, "projected_restore_seconds": 4321.0},
        "projected_restore_seconds": 4321.0, "exit_code": 1}
    return {**base, **changes}


REPORT = {"datasets": [
    row("photos"),
    row("a-dataset-with-a-very-long-name-indeed", findings={}, last={}, stale=[], newest_snapshot=None, drill=None,
        projected_restore_seconds=None, checksum_coverage=None),
    row("music", findings={}, last={}, stale=["verify"]),
    row("docs", findings={}, last={}, stale=[]),
]}


@pytest.mark.parametrize("columns", [80, 120])
def test_one_line_per_dataset_fits_the_terminal(columns, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(columns))
    render_status(REPORT)
    lines = capsys.readouterr().out.splitlines()
    table = lines[:lines.index("")]
    assert len(table) == 1 + len(REPORT["datasets"])  # the header, then one line per dataset: nothing wraps
    assert all(len(line) <= columns for line in table), table
    assert table[0].split() == ["dataset", "state", "size", "checksum", "findings", "recovery", "pt", "restore"]
    photos, long_name, music, docs = table[1:]
    assert photos.split() == ["photos", "failing", "5.0", "GiB", "99%", "5", "1.0d", "ago", "1.2h"]
    assert long_name.split()[1:] == ["ok", "5.0", "GiB", "-", "0", "none", "-"]
    assert music.split()[1] == "stale" and docs.split()[1] == "ok"
    if columns == 80:  # cut to fit, never wrapped
        assert long_name.startswith("a-dataset") and long_name.split()[0].endswith("…")
    else:  # room enough for the whole name
        assert long_name.split()[0] == "a-dataset-with-a-very-long-name-indeed"


def test_details_are_label_value_lines_below_the_table(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    render_status({"datasets": [row("photos")]})
    out = capsys.readouterr().out
    details = out.split("● photos - failing\n")[1].splitlines()
    labels = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in details}
    assert labels["path"] == "/srv/photos"
    assert labels["size"] == "1234 files, 5.0 GiB"
    assert labels["coverage"] == "98.7% by checksum, 25.0% confirmed by scrub in 30 days"
    assert labels["findings"] == "2 changed, 3 missing_local"
    assert labels["snapshot"].startswith("455f9070, 1.0d ago (")
    assert labels["restore"].startswith("drill passed ") and labels["restore"].endswith(
        "91.1 MiB/s; projected full restore 1.2h")
    assert labels["push"] == "failed 2.0h ago in 3s; error: restic: repository is locked"
    assert labels["drill"] == "never ran; schedule '0 3 * * 0'"
    assert labels["stale"].startswith("drill (schedule '0 3 * * 0')")


def test_a_function_added_to_the_details_gets_its_line(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr("syncer.cli.render.STATUS_DETAILS", [*STATUS_DETAILS, lambda status: [("peak RSS", "42 MiB")]])
    render_status({"datasets": [row("photos")]})
    assert "peak RSS: 42 MiB" in capsys.readouterr().out


def test_a_hostile_name_is_quoted_in_the_table_and_the_details(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "120")
    render_status({"datasets": [row("bad\x1b[2Jname[red]")]})
    out = capsys.readouterr().out
    assert "\x1b" not in out and "$'bad\\033[2Jname[red]'" in out
