"""A flaky uplink under `syncer push`: restic talks to the loopback S3 server through
the fault proxy. Transient resets are ridden out; a connection that keeps breaking
fails the push with exit 3 and a clear message; either way the next ordinary push
succeeds, `restic check` passes and the snapshot restores byte for byte."""

import os
import random
import time

import pytest
import yaml

from tests.faults.proxy import Fault, FaultProxy
from tests.faults.support import SEED, assert_clean_failure, bytes_lost, integrity_check, record, tree_digests
from tests.integration.offsite_support import make_dataset
from tests.support import write_policy


@pytest.fixture
def proxied_offsite(tmp_path, s3_server):
    bucket = f"offsite-{random.Random(str(tmp_path)).randrange(10**9)}"
    s3_server.client().create_bucket(Bucket=bucket)
    proxy = FaultProxy(int(s3_server.url.rsplit(":", 1)[1]))
    files = {f"photos/{number}.jpg": os.urandom(40_000 + number) for number in range(12)}
    dataset = make_dataset(tmp_path, files, repository=f"s3:{proxy.url}/{bucket}/restic/photos",
                           env_text=s3_server.credentials_text())
    yield dataset, proxy
    proxy.close()


def change(dataset, seed):
    chooser = random.Random(seed)
    for number in range(3):
        (dataset.data / f"photos/new-{seed}-{number}.jpg").write_bytes(chooser.randbytes(60_000))


def assert_recovered(dataset, proxy):
    """The uplink heals: the next ordinary push works, the repository is sound and the
    newest snapshot holds the dataset."""
    proxy.schedule([])
    pushed = dataset.syncer("push", "--json")
    assert pushed.exit_code == 0, pushed.output
    checked = dataset.restic("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    target = dataset.root / f"restored-{time.monotonic_ns()}"
    restored = dataset.restic("restore", "latest", "--target", str(target))
    assert restored.returncode == 0, restored.stderr
    lost = bytes_lost(tree_digests(dataset.data), tree_digests(target / str(dataset.data).lstrip("/")))
    assert integrity_check(dataset.state) == "ok"
    return lost


@pytest.mark.restic_versions
@pytest.mark.faults
def test_push_rides_out_transient_resets(proxied_offsite):
    dataset, proxy = proxied_offsite
    assert dataset.syncer("push").exit_code == 0
    change(dataset, SEED)
    chooser = random.Random(SEED)
    faults = [Fault("reset", after_bytes=chooser.randrange(100, 40_000), direction="up") for _ in range(3)]
    proxy.schedule(faults)
    pushed = dataset.syncer("push", "--json")
    assert proxy.faults_injected() == 3
    assert pushed.exit_code == 0, pushed.output
    lost = assert_recovered(dataset, proxy)
    record("network: transient resets during push (restic, s3)", 3, 3, lost)
    assert lost == 0


# restic 0.14 gives up on a dead uplink after about a minute and a half; 0.18 keeps
# retrying far past any nightly window, and offsite.timeout is what stops it.
@pytest.mark.faults
@pytest.mark.restic_versions
def test_push_through_a_connection_that_keeps_breaking(proxied_offsite):
    dataset, proxy = proxied_offsite
    document = yaml.safe_load((dataset.policies / "photos.yaml").read_text())
    document["offsite"]["timeout"] = "150s"
    write_policy(dataset.policies, "photos", document)
    assert dataset.syncer("push").exit_code == 0
    change(dataset, SEED + 1)
    proxy.schedule([], default=Fault("reset", after_bytes=2_000, direction="up"))
    failed = dataset.syncer("push", "--json", timeout=600)
    # restic gives up or offsite.timeout stops it; either way syncer says which step failed where.
    assert_clean_failure(failed, 3, ("restic backup on offsite repository", "failed"))
    lost = assert_recovered(dataset, proxy)
    record("network: reset on every connection during push (restic, s3)", 1, 1, lost)
    assert lost == 0
