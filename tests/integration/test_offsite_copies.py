"""offsite.copies: push copies each snapshot to a second repository; a copy that fails
is a finding that never undoes the push; status, metrics, restore/drill --from and
audit-offsite know the copies."""

import json
import os
import subprocess

from tests.integration.offsite_support import make_dataset, tree_bytes
from tests.integration.test_notify import Receiver
from tests.support import write_secret

FILES = {f"photos/{number}.jpg": os.urandom(30_000 + number) for number in range(4)} | {"a.txt": b"alpha"}


def with_copies(tmp_path, copies, **offsite):
    copy_password = write_secret(tmp_path / "secrets" / "copy.pass", "copy-password-d41f\n")
    listed = [dict(copy, password_file=str(copy_password)) for copy in copies]
    return make_dataset(tmp_path, FILES, extra={"copies": listed, **offsite})


def test_a_failed_copy_is_a_finding_the_push_stands_and_status_restore_drill_recover_know_the_copies(tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where the second copy's folder should be")
    good, bad = str(tmp_path / "usb"), str(tmp_path / "not-a-folder" / "restic")
    dataset = with_copies(tmp_path, [{"repository": good}, {"repository": bad}], retention={"keep_last": 1},
                          prune="always", forget="always")
    (dataset.root / "metrics").mkdir()
    receiver = Receiver()
    (dataset.policies / "syncer.yaml").write_text(f"metrics:\n  textfile: {dataset.root / 'metrics' / 's.prom'}\n"
                                                  f"notify:\n  webhook: {receiver.url}/hook-5ecret\n")
    pushed = dataset.syncer("job", "push", "--json")
    receiver.server.shutdown()
    assert pushed.exit_code == 1, pushed.output
    (sent,) = [json.loads(request["body"]) for request in receiver.take() if request["body"]]
    assert "photos" in json.dumps(sent)  # the finding was notified
    # syncer.yaml names the webhook, a secret: the copy kept in the snapshot has it masked
    assert "holds a secret" in pushed.stderr and "hook-5ecret" not in pushed.output
    (row,) = pushed.json()["datasets"]
    assert row["snapshot"] and [copy["ok"] for copy in row["copies"]] == [True, False]
    assert row["copies"][1]["repository"] == bad and "copy to" in pushed.stderr
    assert json.loads(dataset.restic("snapshots", "--json").stdout)  # the main repository has the snapshot

    status = dataset.syncer("status", "--json")
    copies = status.json()["datasets"][0]["copies"]
    assert copies[0]["repository"] == good and 0 <= copies[0]["age_seconds"] < 600
    assert copies[1]["age_seconds"] is None and copies[1]["last_error"]
    assert f"copy: {good}: newest snapshot" in dataset.syncer("status").stdout
    metrics = (dataset.root / "metrics" / "s.prom").read_text()
    assert f'syncer_copy_snapshot_age_seconds{{dataset="photos",repository="{good}"}}' in metrics

    restored = dataset.syncer("restore", "photos", "--from", "1", "--to", tmp_path / "back", "--json")
    assert restored.exit_code == 0, restored.output
    assert tree_bytes(tmp_path / "back") == tree_bytes(dataset.data)
    drilled = dataset.syncer("drill", "photos", "--from", good, "--sample", "2", "--json")
    assert drilled.exit_code == 0 and drilled.json()["passed"] is True, drilled.output
    unknown = dataset.syncer("drill", "photos", "--from", "3")
    assert unknown.exit_code == 2 and "no such copy" in unknown.stderr
    assert "copy-password-d41f" not in pushed.output + status.output + restored.output + drilled.output
    before = {path.name: path.read_bytes() for path in dataset.state.glob("state.db*")}

    def recover(*arguments):  # the copy has its own password: one --password-file per --repository
        return dataset.syncer("recover", "--repository", dataset.repository, "--repository", good, "--password-file",
                              dataset.password_file, "--password-file", tmp_path / "secrets" / "copy.pass",
                              "--root", tmp_path / "new", "--json", *arguments)

    # a snapshot syncer push did not make (no manifest, no policy) fails alone
    legacy = dataset.restic("backup", "--tag", "syncer:legacy", "--host", "legacy", str(dataset.data / "photos"))
    assert legacy.returncode == 0, legacy.stderr
    planned = recover("--dry-run")
    assert planned.exit_code == 3, planned.output
    row, broken = planned.json()["datasets"][::-1]
    assert broken["name"] == "legacy" and "not made by syncer push" in broken["error"]
    assert row["repository"] == dataset.repository  # the copy keeps the snapshot's time: the first given wins
    assert row["projection_basis"] == "1 drill" and row["projected_seconds"] > 0
    assert {path.name: path.read_bytes() for path in dataset.state.glob("state.db*")} == before
    assert not (tmp_path / "new").exists()

    refused = recover("--dataset", "legacy")
    assert refused.exit_code == 3, refused.output
    (broken,) = refused.json()["datasets"]
    assert broken["passed"] is False and "not made by syncer push" in broken["error"]
    assert "Traceback" not in refused.output + planned.output

    copied = recover("--from", "2")  # the copy alone
    assert copied.exit_code == 0, copied.output
    (row,) = copied.json()["datasets"]
    assert row["repository"] == good and row["passed"] is True
    assert tree_bytes(tmp_path / "new" / dataset.data.relative_to("/")) == tree_bytes(dataset.data)
    wrong = recover("--from", "3")
    assert wrong.exit_code == 2 and "not one of the --repository" in wrong.stderr

    (dataset.data / "a.txt").write_bytes(b"changed")  # a second push: the copy forgets and prunes as the main does
    again = dataset.syncer("push", "--json")
    assert again.exit_code == 1 and again.json()["datasets"][0]["pruned"] is True, again.output
    assert "pruning copy" in again.stderr
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RESTIC_")}
    environment.update(RESTIC_REPOSITORY=good, RESTIC_PASSWORD_FILE=str(tmp_path / "secrets" / "copy.pass"),
                       RESTIC_CACHE_DIR=str(tmp_path / "restic-cache"))
    listed = subprocess.run(["restic", "snapshots", "--json", "--tag", "syncer:photos"], capture_output=True,
                            text=True, env=environment, timeout=120)
    assert [snapshot["time"] for snapshot in json.loads(listed.stdout)] == \
        [snapshot["time"] for snapshot in json.loads(dataset.restic("snapshots", "--json", "--tag",
                                                                    "syncer:photos").stdout)]
    assert len(json.loads(listed.stdout)) == 1


def test_audit_offsite_covers_an_s3_copy(tmp_path, s3_server):
    s3_server.client().create_bucket(Bucket="copy-audit")
    env = write_secret(tmp_path / "secrets" / "copy.env", s3_server.credentials_text())
    dataset = with_copies(tmp_path, [{"repository": f"s3:{s3_server.url}/copy-audit/restic", "env_file": str(env)}])
    audited = dataset.syncer("audit-offsite", "--json")
    assert audited.exit_code == 1, audited.output
    (row,) = audited.json()["datasets"]
    assert row["audited"] is False  # the main repository is a local folder
    (copy,) = row["copies"]
    assert copy["bucket"] == "copy-audit" and any("delete every snapshot" in text for text in copy["warnings"])
    assert s3_server.secret_key not in audited.output
