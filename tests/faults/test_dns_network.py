"""DNSimple zones behind the TCP fault proxy: answers reset part-way (whoami, the
zones, a page of records, a zone file) are retried or end the run with one message;
no zone file is ever left half-written, and the next ordinary pull brings every zone."""

import json
import random

import pytest

from tests.fakes import dnsimple
from tests.faults.proxy import Fault, FaultProxy
from tests.faults.support import SEED, assert_clean_failure, record, run, tree_digests
from tests.support import write_policy, write_secret

pytestmark = pytest.mark.faults


@pytest.fixture
def proxied_zones(tmp_path):
    with dnsimple.FakeDNSimple() as fake:
        for number in range(6):
            zone = f"zone{number}.example"
            fake.add_zone(zone)
            for host in range(60):  # a records listing of more than one page
                fake.add_record(zone, f"host{host:02d}", "A", f"192.0.2.{host}", ttl=300 + number)
        proxy = FaultProxy(fake.port)
        (tmp_path / "dns").mkdir()
        write_secret(tmp_path / "secrets" / "dnsimple.env", dnsimple.credentials_text())
        write_policy(tmp_path / "policies", "dns", {"path": str(tmp_path / "dns"), "authority": {
            "type": "dnsimple", "api_url": proxy.url, "credentials": "../secrets/dnsimple.env"}})
        yield tmp_path, proxy
        proxy.close()


def pull(tmp_path):
    return run("pull", "--json", policies=tmp_path / "policies", state=tmp_path / "state")


def assert_every_zone_whole(tmp_path):
    """Each zone file present is one the service rendered whole: a JSON document."""
    for path in tree_digests(tmp_path / "dns"):
        assert path.endswith((".json", ".zone")), path
        if path.endswith(".json"):
            json.loads((tmp_path / "dns" / path).read_text())


def test_pull_of_zones_through_resets_part_way(proxied_zones):
    tmp_path, proxy = proxied_zones
    chooser = random.Random(SEED)
    proxy.schedule([Fault("reset", after_bytes=chooser.randrange(100, 6_000)) for _ in range(4)])
    result = pull(tmp_path)
    assert "Traceback" not in result.output and result.exit_code in (0, 3), result.output
    assert_every_zone_whole(tmp_path)
    proxy.schedule([])
    again = pull(tmp_path)
    assert again.exit_code == 0, again.output
    assert len(tree_digests(tmp_path / "dns")) == 12
    verified = run("verify", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
    assert verified.exit_code == 0, verified.output
    record("network: resets part-way (pull, dnsimple)", 4, 4, 0)


def test_pull_of_zones_when_every_connection_breaks(proxied_zones):
    tmp_path, proxy = proxied_zones
    proxy.schedule([], default=Fault("reset", after_bytes=2_000))
    result = pull(tmp_path)
    assert_clean_failure(result, 3, mentions=("dnsimple",))
    assert tree_digests(tmp_path / "dns") == {}
    proxy.schedule([], default=Fault("pass"))
    assert pull(tmp_path).exit_code == 0
    assert len(tree_digests(tmp_path / "dns")) == 12
    record("network: reset on every connection (pull, dnsimple)", 1, 1, 0)
