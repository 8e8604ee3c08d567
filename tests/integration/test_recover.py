"""`syncer recover`: a "board" of three datasets (local, S3 and Bunny authorities) is
pushed, then lost (policies, data, state), and rebuilt from the repository alone."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.fakes import bunny
from tests.integration.offsite_support import PASSWORD, tree_bytes
from tests.support import require_tool, run_syncer, write_policy, write_secret, write_tree

BUCKET, OFFSITE_BUCKET = "board-docs", "board-offsite"
FILES = {
    "photos": {f"2024/img-{number}.jpg": os.urandom(200_000 + number) for number in range(8)} | {"é note.txt": b"hi"},
    "docs": {"a.txt": b"alpha", "reports/q1.pdf": b"pdf" * 30_000},
    "site": {"index.html": b"<html></html>", "img/logo.png": os.urandom(40_000)},
}
SYNCER_YAML = "metrics:\n  textfile: metrics/syncer.prom\n"
COPY_PASSWORD = "usb-copy-password-7a1c"


class Board:
    """What survives the board's death: the repository, the keys and the authorities."""

    def __init__(self, folder, s3_server, fake):
        self.folder, self.s3_server, self.fake = folder, s3_server, fake
        self.policies = folder / "board" / "policies"
        self.keys = folder / "keys"
        self.repository = f"s3:{s3_server.url}/{OFFSITE_BUCKET}/restic"
        self.password_file = write_secret(self.keys / "restic.pass", PASSWORD + "\n")
        self.copy = folder / "usb" / "restic"
        self.copy_password_file = write_secret(self.keys / "usb.pass", COPY_PASSWORD + "\n")
        self.env_file = write_secret(self.keys / "offsite.env", s3_server.credentials_text())
        self.secrets = [PASSWORD, COPY_PASSWORD, s3_server.secret_key, s3_server.access_key, bunny.ACCESS_KEY]
        self.trees = {}

    def data(self, name):
        return self.folder / "board" / "data" / name

    def recover(self, *arguments, state=None, **options):
        return run_syncer("recover", "--repository", self.repository, "--password-file", self.password_file,
                          "--env-file", self.env_file, *arguments, policies=self.policies,
                          state=state or self.folder / "new-state", **options)

    def restic(self, *arguments, binary=False, copy=False):
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("RESTIC_", "AWS_"))}
        environment.update(self.s3_server.env(), RESTIC_REPOSITORY=str(self.copy) if copy else self.repository,
                           RESTIC_PASSWORD_FILE=str(self.copy_password_file if copy else self.password_file),
                           RESTIC_CACHE_DIR=str(self.folder / "restic-cache"))
        done = subprocess.run([require_tool("restic"), *arguments], capture_output=True, env=environment,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout if binary else done.stdout.decode()


def write_board(board):
    """Three datasets with their policies, credentials and syncer.yaml; push them."""
    client = board.s3_server.client()
    for bucket in (BUCKET, OFFSITE_BUCKET):
        client.create_bucket(Bucket=bucket)
    for key, body in FILES["docs"].items():
        client.put_object(Bucket=BUCKET, Key=f"docs/{key}", Body=body)
    for key, body in FILES["site"].items():
        board.fake.put_file(f"site/{key}", body)
    authority_photos = write_tree(board.folder / "nas" / "photos", FILES["photos"])
    offsite = {"repository": board.repository, "password_file": "restic.pass", "env_file": "offsite.env",
               "manifest_root": str(board.folder / "board" / "manifests"),
               "copies": [{"repository": str(board.copy), "password_file": "usb.pass"}]}
    authorities = {
        "photos": {"type": "local", "path": str(authority_photos)},
        "docs": {"type": "s3", "bucket": BUCKET, "prefix": "docs", "endpoint_url": board.s3_server.url,
                 "credentials": "s3.env"},
        "site": {"type": "bunnycdn", "zone": "files", "path": "site", "endpoint": board.fake.url,
                 "credentials": "bunny.env"},
    }
    for name, files in FILES.items():
        write_tree(board.data(name), files)
        write_policy(board.policies, name, {"path": str(board.data(name)), "authority": authorities[name],
                                            "offsite": offsite})
        board.trees[name] = tree_bytes(board.data(name))
    (board.policies / "syncer.yaml").write_text(SYNCER_YAML)
    write_credentials(board, board.policies)
    pushed = run_syncer("push", "--json", policies=board.policies, state=board.folder / "board" / "state")
    assert pushed.exit_code == 0, pushed.output
    for row in pushed.json()["datasets"]:
        (copy,) = row["copies"]
        assert copy["ok"] is True and copy["repository"] == str(board.copy), copy
    assert "init --copy-chunker-params" in pushed.stderr
    board.written = {path.name: path.read_bytes() for path in board.policies.glob("*.yaml")}


def write_credentials(board, folder):
    write_secret(folder / "restic.pass", PASSWORD + "\n")
    write_secret(folder / "offsite.env", board.s3_server.credentials_text())
    write_secret(folder / "s3.env", board.s3_server.credentials_text())
    write_secret(folder / "bunny.env", f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
    write_secret(folder / "usb.pass", COPY_PASSWORD + "\n")


@pytest.fixture(scope="module")
def board(tmp_path_factory, s3_server):
    with bunny.FakeBunny(zone="files") as fake:
        lost = Board(tmp_path_factory.mktemp("recover"), s3_server, fake)
        write_board(lost)
        shutil.rmtree(lost.folder / "board")  # the board dies: policies, datasets, state, manifests
        yield lost


def recovered_tree(root, board, name):
    return tree_bytes(root / board.data(name).relative_to("/"))


def test_every_snapshot_carries_its_policy_and_syncer_yaml_and_no_secret(board):
    import io
    import json
    import tarfile

    main = json.loads(board.restic("snapshots", "--json"))
    copied = json.loads(board.restic("snapshots", "--json", copy=True))
    for snapshots in (main, copied):
        assert sorted(tag for snapshot in snapshots for tag in snapshot["tags"]) == \
            ["syncer:docs", "syncer:photos", "syncer:site"]
    # the copy was created with the main repository's chunker parameters: deduplication carries over
    configs = [json.loads(board.restic("cat", "config", copy=copy)) for copy in (False, True)]
    assert configs[0]["chunker_polynomial"] == configs[1]["chunker_polynomial"]
    for snapshot in main + copied:
        archive = board.restic("dump", snapshot["id"], "/", binary=True, copy=snapshot in copied)
        for secret in board.secrets:
            assert secret.encode() not in archive, (snapshot["tags"], "holds a secret")
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            kept = {Path(member.name).name: tar.extractfile(member).read() for member in tar
                    if member.isreg() and Path(member.name).parent.name == "policy"}
        name = snapshot["tags"][0].split(":", 1)[1]
        assert kept == {f"{name}.yaml": board.written[f"{name}.yaml"], "syncer.yaml": SYNCER_YAML.encode()}


def test_a_wrong_password_is_one_line_and_exit_3(board, tmp_path):
    wrong = write_secret(tmp_path / "wrong.pass", "not-the-password-4242\n")
    result = run_syncer("recover", "--repository", board.repository, "--password-file", wrong, "--env-file",
                        board.env_file, "--root", tmp_path / "root", policies=board.policies, state=tmp_path / "s")
    assert result.exit_code == 3, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "wrong password" in lines[0], result.stderr
    assert "not-the-password-4242" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "root").exists()


def test_dry_run_lists_targets_sizes_and_a_projection_and_writes_nothing(board, tmp_path):
    result = board.recover("--root", tmp_path / "root", "--dry-run", "--json", state=tmp_path / "state")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in result.json()["datasets"]}
    assert sorted(rows) == ["docs", "photos", "site"]
    for name, row in rows.items():
        assert row["target"] == str(tmp_path / "root" / board.data(name).relative_to("/"))
        assert row["files"] == len(FILES[name]) and row["bytes"] == sum(map(len, FILES[name].values()))
        assert row["projected_seconds"] > 0 and "timed sample" in row["projection_basis"]
    assert result.json()["projected_rto_seconds"] > 0
    assert not (tmp_path / "root").exists() and not (tmp_path / "state").exists()


@pytest.mark.restic_versions  # the laptop a drill or a recovery runs on usually has a newer restic
def test_the_board_is_recovered_from_the_repository_alone_then_verifies(board, tmp_path):
    root = tmp_path / "root"
    result = board.recover("--root", root, "--json")
    assert result.exit_code == 0, result.output
    report = result.json()
    assert sorted(report) == ["datasets", "missing_credentials", "next_steps", "rto_seconds"]
    new_policies = root / board.policies.relative_to("/")
    rows = {row["name"]: row for row in report["datasets"]}
    for name in FILES:
        assert recovered_tree(root, board, name) == board.trees[name], name
        row = rows[name]
        assert row["passed"] is True and row["files"] == len(FILES[name]) and row["seconds"] > 0
        assert row["repository"] == board.repository and row["target"] == str(root / board.data(name).relative_to("/"))
        assert (new_policies / f"{name}.yaml").read_bytes() == board.written[f"{name}.yaml"]
    assert (new_policies / "syncer.yaml").read_text() == SYNCER_YAML
    assert report["rto_seconds"] >= sum(row["seconds"] for row in rows.values())
    assert report["missing_credentials"] == sorted(str(new_policies / name) for name in
                                                   ("bunny.env", "offsite.env", "restic.pass", "s3.env",
                                                    "usb.pass"))
    assert report["next_steps"][1:] == [f"syncer --policies {new_policies} doctor",
                                        f"syncer --policies {new_policies} systemd install"]
    for secret in board.secrets:
        assert secret not in result.output

    # The owner puts the credentials back and points the policies at the new paths.
    write_credentials(board, new_policies)
    for name in FILES:
        path = new_policies / f"{name}.yaml"
        document = yaml.safe_load(path.read_text())
        document["path"] = str(root / board.data(name).relative_to("/"))
        document["offsite"]["manifest_root"] = str(tmp_path / "manifests")
        path.write_text(yaml.safe_dump(document))
    verified = run_syncer("verify", "--json", policies=new_policies, state=tmp_path / "verify-state")
    assert verified.exit_code == 0, verified.output
    assert {row["name"] for row in verified.json()["datasets"]} == set(FILES)


def test_a_recover_killed_mid_way_finishes_when_run_again(board, tmp_path):
    root, state = tmp_path / "root", tmp_path / "state"
    command = [sys.executable, "-m", "syncer", "--policies", str(board.policies), "--state-dir", str(state),
               "recover", "--repository", board.repository, "--password-file", str(board.password_file),
               "--env-file", str(board.env_file), "--root", str(root), "--dataset", "docs", "--dataset", "photos"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SYNCER_")}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                               start_new_session=True)
    data = root / board.data("photos").parent.relative_to("/")
    deadline = time.monotonic() + 60
    # datasets go in name order: kill it while the second one (photos) is being staged
    while not any(entry.name.startswith(".photos.syncer-restore-") for entry in data.glob(".*")):
        assert process.poll() is None and time.monotonic() < deadline, "recover ended before it could be killed"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    assert not (data / "photos").exists()  # the staging folder never reached the target

    again = board.recover("--root", root, "--dataset", "docs", "--dataset", "photos", "--json", state=state)
    assert again.exit_code == 0, again.output
    rows = {row["name"]: row for row in again.json()["datasets"]}
    assert rows["docs"]["skipped"] is True and rows["photos"]["skipped"] is False
    for name in ("docs", "photos"):
        assert recovered_tree(root, board, name) == board.trees[name], name
    assert not [entry for entry in data.iterdir() if "syncer-restore" in entry.name]


def test_zz_the_board_is_recovered_from_the_copy_once_the_main_repository_is_gone(board, tmp_path):
    """Runs last: it deletes the main repository."""
    client = board.s3_server.client()
    for item in client.list_objects_v2(Bucket=OFFSITE_BUCKET).get("Contents", []):
        client.delete_object(Bucket=OFFSITE_BUCKET, Key=item["Key"])
    root = tmp_path / "root"
    new_policies = root / board.policies.relative_to("/")
    write_policy(new_policies, "photos", {"path": "/elsewhere", "authority": {"type": "local", "path": "/x"}})
    write_tree(root / board.data("docs").relative_to("/"), {"mine.txt": b"keep me"})

    def recover(*arguments):
        return run_syncer("recover", "--repository", board.copy, "--password-file", board.copy_password_file,
                          "--root", root, "--json", *arguments, policies=board.policies, state=tmp_path / "state")

    kept = recover()  # a policy that differs and a non-empty target are kept without --force
    assert kept.exit_code == 2, kept.output
    rows = {row["name"]: row for row in kept.json()["datasets"]}
    assert rows["photos"]["passed"] is False and "--force" in rows["photos"]["error"]
    assert rows["docs"]["passed"] is False and "not empty" in rows["docs"]["error"]
    assert rows["site"]["passed"] is True and rows["site"]["repository"] == str(board.copy)
    assert "/elsewhere" in (new_policies / "photos.yaml").read_text()
    assert recovered_tree(root, board, "docs") == {"mine.txt": b"keep me"}

    forced = recover("--force")
    assert forced.exit_code == 0, forced.output
    rows = {row["name"]: row for row in forced.json()["datasets"]}
    assert rows["site"]["skipped"] is True and not rows["photos"]["skipped"]
    assert (new_policies / "photos.yaml").read_bytes() == board.written["photos.yaml"]
    for name in FILES:
        assert recovered_tree(root, board, name) == board.trees[name], name
