"""Offsite to the loopback S3 server (moto): push, drill, restore, and the bucket audit."""

import os

from tests.integration.offsite_support import make_dataset, tree_bytes

FILES = {f"photos/{number}.jpg": os.urandom(50_000 + number) for number in range(6)} | {"note é.txt": b"hi\n"}


def s3_dataset(tmp_path, s3_server, bucket, **bucket_options):
    s3_server.client().create_bucket(Bucket=bucket, **bucket_options)
    return make_dataset(tmp_path, FILES, repository=f"s3:{s3_server.url}/{bucket}/restic/photos",
                        env_text=s3_server.credentials_text())


def test_push_drill_restore_over_s3_and_the_audit_warns(tmp_path, s3_server):
    dataset = s3_dataset(tmp_path, s3_server, "offsite-plain")
    pushed = dataset.syncer("push", "--json")
    assert pushed.exit_code == 0, pushed.output
    assert "creating it (restic init)" in pushed.stderr
    keys = [item["Key"] for item in s3_server.client().list_objects_v2(Bucket="offsite-plain")["Contents"]]
    assert "restic/photos/config" in keys

    drilled = dataset.syncer("drill", "photos", "--sample", "3", "--json")
    assert drilled.exit_code == 0, drilled.output
    assert drilled.json()["passed"] is True and drilled.json()["files_checked"] == 3

    restored = dataset.syncer("restore", "photos", "--to", tmp_path / "back")
    assert restored.exit_code == 0, restored.output
    assert tree_bytes(tmp_path / "back") == tree_bytes(dataset.data)

    audited = dataset.syncer("audit-offsite", "--json")
    assert audited.exit_code == 1, audited.output
    row = audited.json()["datasets"][0]
    assert row["bucket"] == "offsite-plain" and row["versioning"] == "not configured"
    assert row["object_lock"]["enabled"] is False
    assert any("delete every snapshot" in warning for warning in row["warnings"])
    output = pushed.output + drilled.output + restored.output + audited.output
    assert s3_server.secret_key not in output


def test_audit_accepts_a_bucket_with_object_lock_retention(tmp_path, s3_server):
    dataset = s3_dataset(tmp_path, s3_server, "offsite-locked", ObjectLockEnabledForBucket=True)
    s3_server.client().put_object_lock_configuration(
        Bucket="offsite-locked", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}}})
    audited = dataset.syncer("audit-offsite", "photos", "--json")
    assert audited.exit_code == 0, audited.output
    row = audited.json()["datasets"][0]
    assert row["versioning"] == "Enabled"
    assert row["object_lock"]["enabled"] is True
    assert (row["object_lock"]["mode"], row["object_lock"]["days"]) == ("COMPLIANCE", 30)
    assert row["warnings"] == []


def test_an_offsite_env_file_readable_by_others_is_refused(tmp_path, s3_server):
    dataset = s3_dataset(tmp_path, s3_server, "offsite-keys")
    dataset.env_file.chmod(0o644)
    for arguments in (("push",), ("snapshots", "photos"), ("audit-offsite",)):
        result = dataset.syncer(*arguments)
        assert result.exit_code == 2, (arguments, result.output)
        assert str(dataset.env_file) in result.stderr and "chmod 600" in result.stderr
        assert s3_server.secret_key not in result.output and "Traceback" not in result.output
