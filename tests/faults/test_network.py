"""A flaky uplink, injected with the TCP fault proxy between syncer and the loopback
S3 server: connections reset mid-listing, refused, stalled and trickled. A run that
cannot finish exits 3 with one clear message and no traceback, never reports a
partial listing as findings or as ok, and the next ordinary run succeeds."""

import hashlib
import random
import uuid

import pytest

from tests.faults.proxy import Fault, FaultProxy
from tests.faults.support import (
    SEED,
    assert_clean_failure,
    integrity_check,
    mirror_refs,
    record,
    run,
    tree_digests,
)
from tests.support import write_policy, write_secret, write_tree

FILES = {f"album{i % 4}/photo-{i:03d}.jpg": bytes([i]) * (500 + 37 * i) for i in range(60)}
FILES["notes/ü and spaces.txt"] = "non-ascii key"


@pytest.fixture
def proxied_bucket(tmp_path, s3_server):
    """A bucket holding FILES, a local copy with one planted difference, and a policy
    whose endpoint_url is the fault proxy in front of the S3 server."""
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    for key, body in FILES.items():
        client.put_object(Bucket=bucket, Key=f"site/{key}", Body=body.encode() if isinstance(body, str) else body)
    local = write_tree(tmp_path / "local", FILES)
    (local / "album0" / "photo-000.jpg").unlink()  # planted: missing_local
    credentials = write_secret(tmp_path / "s3.env", s3_server.credentials_text())
    proxy = FaultProxy(int(s3_server.url.rsplit(":", 1)[1]))
    write_policy(tmp_path / "policies", "site", {
        "path": str(local),
        "authority": {"type": "s3", "bucket": bucket, "prefix": "site", "endpoint_url": proxy.url,
                      "credentials": str(credentials)}})
    yield tmp_path, proxy
    proxy.close()


def verify(tmp_path, env=None):
    return run("verify", "--json", policies=tmp_path / "policies", state=tmp_path / "state", env=env)


TRUE_ITEMS = [{"path": "album0/photo-000.jpg", "status": "missing_local"}]


def assert_true_report(result):
    """The uninterrupted answer: one planted difference, everything else ok."""
    assert result.exit_code == 1, result.output
    [dataset] = result.json()["datasets"]
    assert dataset["items"] == TRUE_ITEMS
    assert dataset["counts"]["ok"] == len(FILES) - 1


def assert_failed_without_claims(result, tmp_path, mentions):
    assert_clean_failure(result, 3, mentions)
    [dataset] = result.json()["datasets"]
    assert "error" in dataset and "counts" not in dataset, dataset
    assert integrity_check(tmp_path / "state") == "ok"


def persistent_failure(tmp_path, proxy, fault, fault_name, mentions, env=None):
    """Every connection gets `fault`: the run fails cleanly; then the uplink heals
    and the next ordinary run gives the true report."""
    before = tree_digests(tmp_path / "local")
    proxy.schedule([], default=fault)
    failed = verify(tmp_path, env)
    assert proxy.faults_injected() > 0
    assert_failed_without_claims(failed, tmp_path, mentions)
    proxy.schedule([])
    healed = verify(tmp_path)
    assert_true_report(healed)
    lost = sum(size for path, (size, _) in before.items() if tree_digests(tmp_path / "local").get(path) is None)
    record(fault_name, 1, 1, lost, note=f"{proxy.faults_injected()} connections faulted")
    assert lost == 0


def test_reset_mid_listing_exits_3_and_the_next_run_succeeds(proxied_bucket):
    tmp_path, proxy = proxied_bucket
    assert_true_report(verify(tmp_path))  # also tells us how big a listing answer is
    listing_bytes = proxy.bytes_down
    after = random.Random(SEED).randrange(200, max(201, listing_bytes // 2))
    persistent_failure(tmp_path, proxy, Fault("reset", after_bytes=after), "network: reset mid-listing (verify, s3)",
                       ("s3://", "the connection was reset before the answer was complete"))


@pytest.mark.faults
def test_refused_connections_exit_3_naming_the_endpoint(proxied_bucket):
    tmp_path, proxy = proxied_bucket
    persistent_failure(tmp_path, proxy, Fault("refuse"), "network: connection refused (verify, s3)",
                       ("s3://", proxy.url))


def transient(tmp_path, proxy, faults, fault_name, every_connection=False):
    """The first connections get `faults` (or, `every_connection`, all of them get
    faults[0]): the run itself copes and gives the true report, as if nothing had
    happened."""
    already = proxy.faults_injected()
    if every_connection:
        proxy.schedule([], default=faults[0])
    else:
        proxy.schedule(faults)
    result = verify(tmp_path)
    proxy.schedule([])
    injected = proxy.faults_injected() - already
    assert injected >= 1 if every_connection else injected == len(faults)
    assert "Traceback" not in result.output
    assert_true_report(result)
    assert integrity_check(tmp_path / "state") == "ok"
    record(fault_name, injected, injected, 0)


def test_transient_resets_are_retried_within_the_run(proxied_bucket):
    tmp_path, proxy = proxied_bucket
    transient(tmp_path, proxy, [Fault("reset", after_bytes=300), Fault("reset", after_bytes=40, direction="up")],
              "network: transient reset (verify, s3)")


def test_a_stall_and_a_trickle_give_the_true_report(proxied_bucket):
    tmp_path, proxy = proxied_bucket
    transient(tmp_path, proxy, [Fault("stall", seconds=2.0)], "network: 2 s stall (verify, s3)")
    transient(tmp_path, proxy, [Fault("trickle", chunk=512, interval=0.002)], "network: trickle (verify, s3)",
              every_connection=True)


# botocore's read timeout, cut from 60 s so that a stall past it fits in a test
SHORT_READ_TIMEOUT = {"SYNCER_S3_READ_TIMEOUT": "1"}


def test_a_stall_past_botocores_read_timeout_is_retried_within_the_run(proxied_bucket):
    tmp_path, proxy = proxied_bucket
    proxy.schedule([Fault("stall", seconds=3.0)])
    result = verify(tmp_path, SHORT_READ_TIMEOUT)
    proxy.schedule([])
    assert proxy.faults_injected() == 1
    assert "Traceback" not in result.output
    assert_true_report(result)
    assert integrity_check(tmp_path / "state") == "ok"
    record("network: stall past the read timeout (verify, s3)", 1, 1, 0)


@pytest.mark.faults
def test_a_stall_past_the_read_timeout_on_every_connection_exits_3(proxied_bucket):
    tmp_path, proxy = proxied_bucket
    persistent_failure(tmp_path, proxy, Fault("stall", seconds=3.0),
                       "network: every connection stalls past the read timeout (verify, s3)",
                       ("s3://", "no answer within the read timeout (1 s)"), env=SHORT_READ_TIMEOUT)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(6))
def test_resets_at_seeded_offsets_never_lie(proxied_bucket, seed):
    """Resets at random offsets of the answer, on a random number of connections:
    either the true report (the retries won) or a clean exit 3; never anything else."""
    tmp_path, proxy = proxied_bucket
    assert_true_report(verify(tmp_path))
    size = proxy.bytes_down
    chooser = random.Random(SEED * 100 + seed)
    faults = [Fault("reset", after_bytes=chooser.randrange(1, size), direction=chooser.choice(("down", "up")))
              for _ in range(chooser.randrange(1, 8))]
    proxy.schedule(faults)
    result = verify(tmp_path)
    injected = proxy.faults_injected()
    if result.exit_code == 3:
        assert_failed_without_claims(result, tmp_path, ("s3://",))
        proxy.schedule([])
        result = verify(tmp_path)
    assert_true_report(result)
    assert integrity_check(tmp_path / "state") == "ok"
    record("network: reset at a random offset (verify, s3)", injected, injected, 0)



# --- the cloud fakes behind the proxy: pull -----------------------------------------------------------


@pytest.fixture
def proxied_bunny(tmp_path):
    from tests.fakes import bunny

    with bunny.FakeBunny(zone="files") as fake:
        chooser = random.Random(SEED)
        served = {f"dir{n % 3}/blob-{n}.bin": chooser.randbytes(20_000 + n) for n in range(12)}
        for name, data in served.items():
            fake.put_file(f"site/{name}", data)
        proxy = FaultProxy(fake.port)
        local = tmp_path / "local"
        local.mkdir()
        write_secret(tmp_path / "secrets" / "cloud.env", f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        write_policy(tmp_path / "policies", "site", {
            "path": str(local), "authority": {"type": "bunnycdn", "zone": "files", "path": "site",
                                              "endpoint": proxy.url, "credentials": "../secrets/cloud.env"}})
        yield tmp_path, proxy, served
        proxy.close()


def pull(tmp_path):
    return run("pull", "--json", policies=tmp_path / "policies", state=tmp_path / "state")


def assert_pulled_exactly(tmp_path, served):
    result = pull(tmp_path)
    assert result.exit_code == 0, result.output
    local = tree_digests(tmp_path / "local")
    assert sorted(local) == sorted(served), local
    return sum(len(data) for name, data in served.items()
               if local.get(name, (0, ""))[1] != hashlib.sha256(data).hexdigest())


def test_pull_from_bunny_through_resets_mid_download(proxied_bunny):
    tmp_path, proxy, served = proxied_bunny
    chooser = random.Random(SEED)
    faults = [Fault("reset", after_bytes=chooser.randrange(300, 15_000)) for _ in range(4)]
    proxy.schedule(faults)
    result = pull(tmp_path)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 3), result.output
    for path, (_, digest) in tree_digests(tmp_path / "local").items():
        assert path in served and digest == hashlib.sha256(served[path]).hexdigest(), f"{path} is partial"
    injected = proxy.faults_injected()
    lost = assert_pulled_exactly(tmp_path, served)
    record("network: resets mid-download (pull, bunny)", injected, injected, lost)
    assert lost == 0


@pytest.mark.faults
def test_pull_from_bunny_when_every_connection_breaks(proxied_bunny):
    tmp_path, proxy, served = proxied_bunny
    proxy.schedule([], default=Fault("reset", after_bytes=5_000))
    result = pull(tmp_path)
    assert result.exit_code in (1, 3), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for path, (_, digest) in tree_digests(tmp_path / "local").items():
        assert path in served and digest == hashlib.sha256(served[path]).hexdigest(), f"{path} is partial"
    proxy.schedule([])
    lost = assert_pulled_exactly(tmp_path, served)
    record("network: reset on every connection (pull, bunny)", 1, 1, lost)
    assert lost == 0


# --- SmugMug and GitLab behind the proxy: resets mid-listing and mid-download, 429 storms ---


def assert_cloud_pull_tells_the_truth(tmp_path, proxy, check_local, fault_name, storm=None):
    """A pull through the scheduled faults (and `storm`: a fake and a number of 429s
    to answer) ends in the true result or a clean exit 1/3, never leaves a partial file
    under a real name (`check_local` says); the next pull, healed, gets everything."""
    if storm:
        fake, times = storm
        fake.inject(429, times=times, headers={"Retry-After": "0"})
    result = pull(tmp_path)
    injected = proxy.faults_injected()
    if storm:  # the 429s answered; the rest of the storm blows over
        with fake.lock:
            injected += times - sum(fault.times for fault in fake.faults)
            fake.faults.clear()
    assert result.exit_code in (0, 1, 3), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    check_local(complete=False)
    proxy.schedule([])
    healed = pull(tmp_path)
    assert healed.exit_code == 0, healed.output
    lost = check_local(complete=True)
    assert integrity_check(tmp_path / "state") == "ok"
    record(fault_name, injected, injected, lost)
    assert lost == 0


@pytest.fixture
def proxied_smugmug(tmp_path):
    from tests.fakes import smugmug

    with smugmug.FakeSmugMug() as fake:
        proxy = FaultProxy(fake.port)
        fake.url = proxy.url  # the image URLs it hands out lead through the proxy too
        chooser = random.Random(SEED)
        served = {}
        album = fake.add_album("/Trips/Alps")
        for number in range(110):  # two listing pages
            data = chooser.randbytes(3_000 + number * 50)
            fake.add_image(album, f"IMG_{number:04d}.jpg", data)
            served[f"Trips/Alps/IMG_{number:04d}.jpg"] = data
        write_secret(tmp_path / "secrets" / "cloud.env", smugmug.credentials_text())
        (tmp_path / "local").mkdir()
        write_policy(tmp_path / "policies", "site", {
            "path": str(tmp_path / "local"), "authority": {"type": "smugmug", "api_url": proxy.url,
                                                          "upload_url": proxy.url + "/",
                                                          "credentials": "../secrets/cloud.env"}})
        yield tmp_path, proxy, fake, served
        proxy.close()


def smugmug_check(tmp_path, served):
    def check(complete):
        local = tree_digests(tmp_path / "local")
        for path, (_, digest) in local.items():
            assert path in served and digest == hashlib.sha256(served[path]).hexdigest(), f"{path} is partial"
        return sum(len(data) for path, data in served.items() if path not in local) if complete else 0
    return check


def test_pull_from_smugmug_through_resets_mid_listing_and_mid_download(proxied_smugmug):
    tmp_path, proxy, fake, served = proxied_smugmug
    chooser = random.Random(SEED + 7)
    proxy.schedule([Fault("reset", after_bytes=chooser.randrange(500, 20_000)) for _ in range(5)])
    assert_cloud_pull_tells_the_truth(tmp_path, proxy, smugmug_check(tmp_path, served),
                                      "network: resets mid-listing and mid-download (pull, smugmug)")


@pytest.mark.faults
def test_pull_from_smugmug_through_a_429_storm(proxied_smugmug):
    tmp_path, proxy, fake, served = proxied_smugmug
    assert_cloud_pull_tells_the_truth(tmp_path, proxy, smugmug_check(tmp_path, served),
                                      "network: 429 storm (pull, smugmug)", storm=(fake, 12))


@pytest.fixture
def proxied_gitlab(tmp_path):
    from tests.fakes import gitlab

    with gitlab.FakeGitLab(tmp_path / "gitlab-server") as fake:
        proxy = FaultProxy(fake.port)
        fake.url = proxy.url  # its Link headers and clone URLs lead through the proxy too
        chooser = random.Random(SEED)
        projects = {}
        for number in range(25):  # two listing pages of 20
            project = fake.add_project("team", f"p{number:02d}")
            if number % 5 == 0:
                fake.commit(project, {"data.txt": chooser.randbytes(40_000).hex()})
            else:
                fake.commit(project, {"README.md": f"project {number}"})
            projects[f"team/p{number:02d}.git"] = project
        write_secret(tmp_path / "secrets" / "cloud.env", f"GITLAB_TOKEN={gitlab.TOKEN}\n")
        (tmp_path / "local").mkdir()
        write_policy(tmp_path / "policies", "site", {
            "path": str(tmp_path / "local"), "authority": {"type": "gitlab", "url": proxy.url, "groups": ["team"],
                                                          "credentials": "../secrets/cloud.env"}})
        yield tmp_path, proxy, fake, projects
        proxy.close()


def gitlab_check(tmp_path, fake, projects):
    from syncer.endpoints.git import find_mirrors

    def upstream(project):
        return {f"refs/heads/{name}": sha for name, sha in fake.refs(project)[0].items()}

    def check(complete):
        local = tmp_path / "local"
        for path in find_mirrors(local):  # under its real name: a whole mirror
            assert mirror_refs(local / path) == upstream(projects[path]), f"{path} is partial or stale"
        missing = [path for path in projects if not (local / path).is_dir()]
        return len(missing) if complete else 0  # mirrors not repaired (no bytes to count: git objects)
    return check


@pytest.mark.faults
def test_pull_from_gitlab_through_resets_mid_listing_and_mid_clone(proxied_gitlab):
    tmp_path, proxy, fake, projects = proxied_gitlab
    chooser = random.Random(SEED + 11)
    proxy.schedule([Fault("reset", after_bytes=chooser.randrange(300, 30_000)) for _ in range(5)])
    assert_cloud_pull_tells_the_truth(tmp_path, proxy, gitlab_check(tmp_path, fake, projects),
                                      "network: resets mid-listing and mid-clone (pull, gitlab)")


@pytest.mark.faults
def test_pull_from_gitlab_through_a_429_storm(proxied_gitlab):
    tmp_path, proxy, fake, projects = proxied_gitlab
    assert_cloud_pull_tells_the_truth(tmp_path, proxy, gitlab_check(tmp_path, fake, projects),
                                      "network: 429 storm (pull, gitlab)", storm=(fake, 12))
