"""The pure parts of doctor: which S3 servers a dataset signs requests for, a restic
snapshot's age, and the thresholds of the clock check."""

import os
from datetime import UTC, datetime, timedelta

from syncer.actions import doctor
from syncer.policy.load import load_policy_file
from tests.support import write_policy, write_secret


def test_an_s3_repository_and_an_s3_authority_are_both_clock_checked(tmp_path):
    path = write_policy(tmp_path, "bucket", {
        "path": str(tmp_path / "data"),
        "authority": {"type": "s3", "bucket": "b", "region": "eu-west-1", "credentials": "s3.env"},
        "offsite": {"repository": "s3:http://127.0.0.1:9000/restic/photos", "password_file": "pass"}})
    policy, problems = load_policy_file(path, check_paths=False)
    assert not problems
    assert doctor.s3_addresses(policy) == ["https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000"]


def test_a_snapshot_age_reads_restics_nanosecond_times_with_any_offset():
    taken = datetime.now(UTC) - timedelta(hours=5)
    nanoseconds = taken.astimezone().strftime("%Y-%m-%dT%H:%M:%S.123456789%z")
    nanoseconds = nanoseconds[:-2] + ":" + nanoseconds[-2:]
    assert 5 * 3600 - 5 < doctor.snapshot_age_seconds({"time": nanoseconds}) < 5 * 3600 + 5
    zulu = taken.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 5 * 3600 - 5 < doctor.snapshot_age_seconds({"time": zulu}) < 5 * 3600 + 5


def fake_systemctl(folder, enabled, next_run="Tue 2026-12-01 03:31:12 UTC"):
    """A `systemctl` that answers is-enabled from `enabled` and `show` with `next_run`."""
    script = folder / "systemctl"
    cases = "".join(f'  "is-enabled {name}") echo enabled; exit 0;;\n' for name in enabled)
    script.write_text(f'#!/bin/sh\ncase "$1 $2" in\n{cases}  "is-enabled "*) echo disabled; exit 1;;\n'
                      f'  "show "*) echo "{next_run}";;\nesac\n')
    script.chmod(0o755)


def test_the_units_check_reports_the_mode_and_the_next_runs(tmp_path, monkeypatch):
    from syncer.schedule import systemd

    monkeypatch.setattr(systemd, "RUNNING_MARKER", tmp_path / "nowhere")
    assert doctor.systemd_check(tmp_path)["status"] == "skip"
    monkeypatch.setattr(systemd, "RUNNING_MARKER", tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    fake_systemctl(tmp_path, [])
    missing = doctor.systemd_check(tmp_path / "units")
    assert missing["status"] == "warn" and "syncer systemd install" in missing["fix"]
    (tmp_path / "units").mkdir()
    for name in ("syncer.service", "syncer.timer", "syncer-verify.service", "syncer-verify.timer"):
        (tmp_path / "units" / name).write_text("[Unit]\n")
    idle = doctor.systemd_check(tmp_path / "units")
    assert idle["status"] == "warn" and "systemctl enable --now syncer.timer" in idle["fix"]
    fake_systemctl(tmp_path, ["syncer.timer", "syncer-verify.timer"])
    timers = doctor.systemd_check(tmp_path / "units")
    assert timers["status"] == "pass" and timers["detail"].startswith("mode timers")
    assert "syncer.timer next Tue 2026-12-01 03:31:12 UTC" in timers["detail"]
    fake_systemctl(tmp_path, ["syncer.timer", "syncer-daemon.service"])
    assert doctor.systemd_check(tmp_path / "units")["status"] == "warn"  # both modes: datasets would run twice


def test_a_credentials_file_from_systemd_is_said_to_come_from_there(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "credentials"))
    write_secret(tmp_path / "credentials" / "gitlab.env", "GITLAB_TOKEN=x\n")
    path = write_policy(tmp_path / "policies", "code", {
        "path": str(tmp_path / "data"),
        "authority": {"type": "gitlab", "url": "http://127.0.0.1:9", "groups": ["team"], "credentials": "gitlab.env"}})
    policy, _ = load_policy_file(path, check_paths=False)
    (label, file, keys), = doctor.credential_files(policy)
    result = doctor.credentials_check(policy, label, file, keys)
    assert result["status"] == "pass" and "from $CREDENTIALS_DIRECTORY" in result["detail"]
    (tmp_path / "credentials" / "gitlab.env").write_text("OTHER=1\n")
    lacking = doctor.credentials_check(policy, label, file, keys)
    assert lacking["status"] == "fail" and "GITLAB_TOKEN" in lacking["detail"]
    assert "syncer auth gitlab code" in lacking["fix"]
