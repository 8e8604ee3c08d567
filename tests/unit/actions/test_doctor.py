"""The pure parts of doctor: which S3 servers a dataset signs requests for, a restic
snapshot's age, and the thresholds of the clock check."""

from datetime import UTC, datetime, timedelta

from syncer.actions import doctor
from syncer.policy.load import load_policy_file
from tests.support import write_policy


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
