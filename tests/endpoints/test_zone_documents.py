"""DNSimple zones as documents (syncer.endpoints.dnsimple) against the loopback fake:
what the file contract's suite skips for them (writing a whole zone), the digests that
leave the SOA serial out, the rate-limit budget, and hostile listings."""

import hashlib
import json
import time

import pytest

from syncer.actions.restore_cloud import write_documents
from syncer.endpoints.dnsimple import MAX_CONTENT, ZONE_DOCUMENTS
from syncer.errors import EndpointError
from tests.endpoints.conftest import DNSimpleHarness, started
from tests.fakes import dnsimple


@pytest.fixture
def zones(request, tmp_path):
    yield from started(DNSimpleHarness, request, tmp_path)


def listing(endpoint):
    return {entry.path: entry for entry in endpoint.list_entries()}


def document_of(endpoint, path):
    entry = listing(endpoint)[path]
    with endpoint.open_entry(entry) as stream:
        return stream.read()


def write_document(endpoint, tmp_path, path, data):
    source = tmp_path / "upload.json"
    source.write_bytes(data)
    return endpoint.write_entry(path, str(source), {"sha256": ZONE_DOCUMENTS.digest(path, data)})


def test_a_new_soa_serial_is_no_change_but_a_record_is_one_and_is_named(zones):
    zones.seed()
    endpoint = zones.endpoint()
    before = listing(endpoint)
    old_document = document_of(endpoint, "example.com.json")
    zones.fake.bump_serial(zones.fake.zones["example.com"])  # DNSimple moved the serial by itself
    after = listing(endpoint)
    assert after["example.com.json"].checksum == before["example.com.json"].checksum
    assert after["example.com.zone"].checksum == before["example.com.zone"].checksum
    assert document_of(endpoint, "example.com.json") != old_document  # the SOA is kept in the file
    zones.fake.add_record("example.com", "new", "A", "192.0.2.9", ttl=300)
    changed = listing(endpoint)
    assert changed["example.com.json"].checksum != before["example.com.json"].checksum
    assert ZONE_DOCUMENTS.difference("example.com.json", old_document, document_of(endpoint, "example.com.json")) \
        == "+ new A 192.0.2.9 ttl 300"


def test_writing_a_zone_creates_updates_and_deletes_records_never_system_ones_and_twice_is_no_write(zones, tmp_path):
    zones.seed()
    endpoint = zones.endpoint()
    wanted = document_of(endpoint, "example.com.json")
    system = {key for key in zones.fake.records("example.com", system=True) if key[1] != "SOA"}
    www = zones.fake.find("example.com", "www", "A")[0]
    del zones.fake.zones["example.com"]["records"][zones.fake.find("example.com", "", "MX")[0]["id"]]
    www["ttl"] = 60
    zones.fake.add_record("example.com", "intruder", "A", "203.0.113.66")
    assert ZONE_DOCUMENTS.plan("example.com.json", wanted, document_of(endpoint, "example.com.json")) == (
        "create @ MX 10 mx.example.net ttl 3600; update www A 192.0.2.7 ttl 60 -> 600; "
        "delete intruder A 203.0.113.66")
    stored = write_document(endpoint, tmp_path, "example.com.json", wanted)
    assert stored.checksum == ZONE_DOCUMENTS.digest("example.com.json", wanted)
    assert listing(endpoint)["example.com.json"].checksum == stored.checksum
    after = zones.fake.records("example.com", system=True)
    assert {key for key in after if key[1] != "SOA"} == system and len(after) == len(system) + 1
    writes = len(zones.fake.writes)
    assert [method for method, _, _ in zones.fake.writes] == ["POST", "PATCH", "DELETE"]
    write_document(endpoint, tmp_path, "example.com.json", wanted)
    assert len(zones.fake.writes) == writes


def test_a_document_that_does_not_match_its_checksum_or_a_zone_file_is_never_written(zones, tmp_path):
    zones.seed()
    endpoint = zones.endpoint()
    wanted = document_of(endpoint, "example.com.json")
    source = tmp_path / "damaged.json"
    source.write_bytes(wanted.replace(b"192.0.2.7", b"192.0.2.8"))
    with pytest.raises(EndpointError, match="does not match its checksum") as raised:
        endpoint.write_entry("example.com.json", str(source), {"sha256": ZONE_DOCUMENTS.digest("x.json", wanted)})
    assert raised.value.permanent
    with pytest.raises(EndpointError, match="only a zone's records"):
        endpoint.write_entry("example.com.zone", str(source), {"sha256": hashlib.sha256(b"").hexdigest()})
    with pytest.raises(EndpointError, match="does not exist at DNSimple"):
        write_document(endpoint, tmp_path, "absent.org.json", wanted)
    assert zones.fake.writes == []


def test_the_budget_pauses_before_it_runs_out_instead_of_meeting_a_429(zones, caplog):
    zones.seed()
    fake = zones.fake
    fake.remaining, fake.reset_at = 8, int(time.time()) + 1
    caplog.set_level("WARNING", logger="syncer.retry")
    entries = listing(zones.endpoint())
    assert set(entries) == set(zones.expected())
    assert fake.over_budget == 0
    assert "requests left of the rate limit; pausing" in caplog.text


def test_a_user_token_with_one_account_uses_it_and_check_access_names_the_user(tmp_path, request):
    harness = DNSimpleHarness(request, tmp_path)
    try:
        harness.fake.user_token = True
        harness.seed()
        endpoint = harness.endpoint()
        assert set(listing(endpoint)) == set(harness.expected())
        assert endpoint.check_access() == "user someone@example.com"
    finally:
        harness.close()


def test_hostile_records_and_never_ending_pages_leave_that_zone_unusable_and_the_others_listed(zones):
    zones.seed()
    zones.fake.add_zone("huge.org")
    zones.fake.add_record("huge.org", "big", "TXT", "x" * (MAX_CONTENT + 1))
    zones.fake.add_zone("endless.org")
    zones.fake.endless.add("endless.org")
    entries = listing(zones.endpoint())
    for path in ("huge.org.json", "huge.org.zone", "endless.org.json", "endless.org.zone"):
        assert entries[path].checksum is None and entries[path].note.startswith("zone not usable")
    assert "longer than 65535 bytes" in entries["huge.org.json"].note
    assert "goes on past 500 pages" in entries["endless.org.json"].note
    assert entries["example.com.json"].checksum


def test_an_answer_too_large_to_hold_and_a_zones_listing_that_never_ends_are_refused(zones):
    zones.seed()
    zones.fake.add_zone("bloated.org")
    zones.fake.add_record("bloated.org", "big", "TXT", "x" * (17 << 20))
    entries = listing(zones.endpoint())
    assert entries["bloated.org.json"].note == "zone not usable: an answer larger than 16 MiB"
    zones.fake.endless_zones = True
    with pytest.raises(EndpointError, match="the list of zones goes on past 500 pages") as raised:
        listing(zones.endpoint())
    assert raised.value.permanent


def test_check_access_refuses_a_token_of_another_account(zones, tmp_path):
    zones.authority["account"] = "2020"
    with pytest.raises(EndpointError, match="the token is account 1010's, not account 2020's") as raised:
        zones.endpoint().check_access()
    assert "DNSIMPLE_TOKEN" in str(raised.value) and dnsimple.TOKEN not in str(raised.value)


def test_a_damaged_local_document_differs_from_every_zone_and_says_so():
    path = "example.com.json"
    good = json.dumps({"zone": "example.com", "records": [], "system_records": []}).encode()
    assert ZONE_DOCUMENTS.digest(path, b"{not json") != ZONE_DOCUMENTS.digest(path, good)
    assert ZONE_DOCUMENTS.digest(path, b"[]") != ZONE_DOCUMENTS.digest(path, good)
    assert ZONE_DOCUMENTS.difference(path, b"{not json", good).startswith("the local file is not JSON")


def test_more_than_ten_differences_are_counted_not_listed():
    def document(hosts):
        records = [{"name": f"host{number:02d}", "type": "A", "content": f"192.0.2.{number}", "ttl": 3600,
                    "priority": None, "regions": ["global"]} for number in hosts]
        return json.dumps({"zone": "example.com", "records": records, "system_records": []}).encode()

    reason = ZONE_DOCUMENTS.difference("example.com.json", document([]), document(range(12)))
    assert reason.startswith("+ host00 A 192.0.2.0 ttl 3600; + host01 A")
    assert reason.count("; +") == 9 and reason.endswith("; and 2 more")


def test_restore_keeps_upstream_only_records_unless_told_and_skips_files_that_are_no_zone(zones, tmp_path):
    zones.seed()
    endpoint = zones.endpoint()
    staging = tmp_path / "staging"
    staging.mkdir()
    for path in ("example.com.json", "example.com.zone"):
        (staging / path).write_bytes(document_of(endpoint, path))
    (staging / "notes.txt").write_text("written by hand beside the zones")
    zones.fake.add_record("example.com", "extra", "A", "192.0.2.50")
    items = {item["path"]: item for item in write_documents(zones.endpoint(), staging)}
    assert items["notes.txt"]["status"] == "skipped" and "DNSimple holds zones" in items["notes.txt"]["reason"]
    assert items["example.com.json"] == {"path": "example.com.json", "status": "present", "reason":
                                         "only upstream, kept (restore --delete deletes them): extra A 192.0.2.50 "
                                         "ttl 3600"}
    assert items["example.com.zone"]["status"] == "follows"
    planned = {item["path"]: item for item in write_documents(zones.endpoint(dry_run=True), staging, delete=True,
                                                              dry_run=True)}
    assert planned["example.com.json"] == {"path": "example.com.json", "status": "to_upload",
                                           "reason": "delete extra A 192.0.2.50"}
    assert zones.fake.writes == []
    done = {item["path"]: item for item in write_documents(zones.endpoint(), staging, delete=True)}
    assert done["example.com.json"]["status"] == "uploaded" and done["example.com.zone"]["status"] == "follows"
    assert [method for method, _, _ in zones.fake.writes] == ["DELETE"]
    again = {item["path"]: item["status"] for item in write_documents(zones.endpoint(), staging, delete=True)}
    assert again == {"example.com.json": "present", "example.com.zone": "present", "notes.txt": "skipped"}


def test_a_long_content_is_cut_in_the_reason():
    key = "v=DKIM1; k=rsa; p=" + "A" * 400
    ours = json.dumps({"zone": "example.com", "records": [], "system_records": []}).encode()
    theirs = json.dumps({"zone": "example.com", "system_records": [], "records": [
        {"name": "mail._domainkey", "type": "TXT", "content": key, "ttl": 3600, "priority": None,
         "regions": ["global"]}]}).encode()
    assert ZONE_DOCUMENTS.difference("example.com.json", ours, theirs) == \
        f"+ mail._domainkey TXT {key[:80]}... ttl 3600"
