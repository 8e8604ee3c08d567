"""Two syncers on one dataset at once: a timer `run` and a manual one, a manual
`verify` during a `push`. The second waits for the dataset lock or exits 3 naming
the holder's PID; neither corrupts the state database, the repository or the
report. The overlap is made certain, not hoped for: the first run's listing is
stalled by the fault proxy (or its push is caught holding the lock) before the
second starts."""

import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.faults.proxy import Fault, FaultProxy
from tests.faults.support import (
    assert_clean_failure,
    integrity_check,
    kill_group,
    record,
    spawn_syncer,
    tree_digests,
)
from tests.faults.test_crash import World
from tests.support import write_policy, write_secret, write_tree

FILES = {f"dir{n % 3}/item-{n:02d}.txt": f"content of item {n}\n" * (n + 1) for n in range(30)}


def restic_in_group(pgid):
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if int(fields[2]) == pgid and name == "restic":
                return True
    return False


def wait_until(condition, seconds=30, what="the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {seconds}s")


@pytest.fixture
def stalled_s3_dataset(tmp_path, s3_server):
    """A dataset whose S3 authority sits behind the fault proxy, with a local restic
    repository as its offsite copy."""
    bucket = f"race-{uuid.uuid4().hex[:10]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    for key, body in FILES.items():
        client.put_object(Bucket=bucket, Key=key, Body=body.encode())
    data = write_tree(tmp_path / "data", FILES)
    credentials = write_secret(tmp_path / "s3.env", s3_server.credentials_text())
    password = write_secret(tmp_path / "restic.pass", "race-password\n")
    proxy = FaultProxy(int(s3_server.url.rsplit(":", 1)[1]))
    write_policy(tmp_path / "policies", "ds", {
        "path": str(data),
        "authority": {"type": "s3", "bucket": bucket, "endpoint_url": proxy.url, "credentials": str(credentials)},
        "offsite": {"repository": str(tmp_path / "repo"), "password_file": str(password),
                    "manifest_root": str(tmp_path / "manifest-root")}})
    yield tmp_path, proxy
    proxy.close()


def start(tmp_path, *arguments, wait=None):
    env = {"SYNCER_LOCK_WAIT": str(wait)} if wait is not None else {}
    return spawn_syncer(*arguments, policies=tmp_path / "policies", state=tmp_path / "state", env=env)


def assert_true_verify(result):
    assert result.exit_code == 0, result.output
    [dataset] = result.json()["datasets"] if "datasets" in result.json() else result.json()["verify"]["datasets"]
    assert dataset["counts"]["ok"] == len(FILES) and dataset["items"] == []


def test_a_second_verify_exits_3_naming_the_holder(stalled_s3_dataset):
    tmp_path, proxy = stalled_s3_dataset
    proxy.schedule([Fault("stall", seconds=3.0)])
    first = start(tmp_path, "verify", "--json")
    wait_until(lambda: proxy.connections >= 1, what="the first verify reaching the authority")
    second = start(tmp_path, "verify", "--json", wait=0.5).finish()
    assert_clean_failure(second, 3, (f"PID {first.process.pid}", "busy"))
    assert_true_verify(first.finish())
    assert integrity_check(tmp_path / "state") == "ok"
    again = start(tmp_path, "verify", "--json").finish()
    assert_true_verify(again)
    record("concurrency: second verify while one holds the lock", 1, 1, 0)


def test_a_second_verify_waits_for_the_first_and_both_tell_the_truth(stalled_s3_dataset):
    tmp_path, proxy = stalled_s3_dataset
    proxy.schedule([Fault("stall", seconds=2.0)])
    first = start(tmp_path, "verify", "--json")
    wait_until(lambda: proxy.connections >= 1, what="the first verify reaching the authority")
    second = start(tmp_path, "verify", "--json", wait=60)
    assert_true_verify(first.finish())
    assert_true_verify(second.finish())
    assert integrity_check(tmp_path / "state") == "ok"
    record("concurrency: second verify waits for the lock", 1, 1, 0)


@pytest.mark.faults
def test_two_syncer_runs_at_once(stalled_s3_dataset):
    tmp_path, proxy = stalled_s3_dataset
    data = tree_digests(tmp_path / "data")
    proxy.schedule([Fault("stall", seconds=2.0)])
    first = start(tmp_path, "run", "--json")
    wait_until(lambda: proxy.connections >= 1, what="the first run reaching the authority")
    second = start(tmp_path, "run", "--json", wait=120)
    results = [first.finish(), second.finish()]
    for result in results:
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert_true_verify(result)
    assert tree_digests(tmp_path / "data") == data
    assert integrity_check(tmp_path / "state") == "ok"
    world = World.__new__(World)  # reuse its restic helpers on this repository
    world.root, world.repository, world.password = tmp_path, tmp_path / "repo", tmp_path / "restic.pass"
    checked = world.restic("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    snapshots = world.restic("snapshots", "--json")
    assert snapshots.returncode == 0 and snapshots.stdout.count('"id"') == 2, snapshots.stdout
    record("concurrency: two syncer run at once", 1, 1, 0)


@pytest.mark.restic_versions
@pytest.mark.faults
def test_a_manual_verify_during_a_push(tmp_path):
    world = World(tmp_path, 11)
    assert world.syncer("verify").exit_code == 0
    push = world.spawn("push", "--json")
    # restic runs inside the push's lock: once its child is there, the lock is held.
    wait_until(lambda: restic_in_group(push.process.pid) or push.process.poll() is not None,
               what="the push starting restic")
    assert push.process.poll() is None, "the push ended before restic could be seen"
    verify = spawn_syncer("verify", "--json", policies=world.policies, state=world.state,
                          env={"SYNCER_LOCK_WAIT": "120"})
    pushed, verified = push.finish(), verify.finish()
    assert pushed.exit_code == 0, pushed.output
    assert verified.exit_code == 0, verified.output
    [dataset] = verified.json()["datasets"]
    assert dataset["counts"]["ok"] == len(world.files) and dataset["items"] == []
    assert integrity_check(world.state) == "ok"
    world.assert_restic_check()
    record("concurrency: manual verify during a push", 1, 1, 0)


@pytest.mark.faults
def test_the_daemon_and_manual_commands_and_a_killed_daemon(tmp_path):
    """The daemon verifies and pushes every few seconds while a user runs verify and
    push by hand; then the daemon is killed with -9 mid-work. Every manual run tells
    the truth, SIGTERM stops a daemon cleanly, and nothing is left that blocks the next
    run."""
    world = World(tmp_path, 12)
    write_policy(world.policies, "ds", {
        "path": str(world.data), "authority": {"type": "local", "path": str(world.authority)},
        "offsite": {"repository": str(world.repository), "password_file": str(world.password),
                    "manifest_root": str(world.repository.parent / "manifest-root")},
        "schedule": {"verify": "*/2 * * * * *", "push": "*/3 * * * * *"}})
    (world.policies / "syncer.yaml").write_text("daemon: {jitter: 0, misfire_grace: 60s, stop_grace: 5s}\n")
    assert world.syncer("push").exit_code == 0
    injected = recovered = 0
    for round_number in range(2):
        daemon = spawn_syncer("daemon", policies=world.policies, state=world.state, env={"SYNCER_LOCK_WAIT": "120"})
        for _ in range(3):
            verified = spawn_syncer("verify", "--json", policies=world.policies, state=world.state,
                                    env={"SYNCER_LOCK_WAIT": "120"}).finish()
            assert verified.exit_code == 0, verified.output
            [dataset] = verified.json()["datasets"]
            assert dataset["counts"]["ok"] == len(world.files) and dataset["items"] == []
            pushed = spawn_syncer("push", policies=world.policies, state=world.state,
                                  env={"SYNCER_LOCK_WAIT": "120"}).finish()
            assert pushed.exit_code == 0, pushed.output
        assert daemon.process.poll() is None, daemon.finish().output
        if round_number == 0:
            daemon.process.send_signal(signal.SIGTERM)
            stopped = daemon.finish(60)
            assert stopped.exit_code == 0, stopped.output
        else:  # the power cut: the daemon and whatever restic it runs die at once
            pid = daemon.process.pid
            wait_until(lambda pid=pid: restic_in_group(pid), what="the daemon running restic")
            kill_group(daemon.process)
            daemon.finish()
        injected += 1
        assert integrity_check(world.state) == "ok"
        after = world.syncer("push")
        assert after.exit_code == 0, after.output
        world.assert_restic_check()
        recovered += 1
    record("concurrency: the daemon and manual commands (SIGTERM, then kill -9)", injected, recovered, 0)
