"""The endpoint contract, run against every endpoint of files: local, s3 (moto on
loopback), smugmug and bunnycdn (their loopback fakes); what it shares with the mirror
contract (describing, listing, failing, no method beyond the contract) runs against
gitlab too. A capability an endpoint lacks is a skip here, with its reason; the suite
is never forked per endpoint."""

import hashlib
import inspect

import pytest

from syncer.actions.restore_cloud import upload_files
from syncer.actions.verify import index_authority
from syncer.endpoints.base import Endpoint
from syncer.endpoints.factory import build_raw_endpoint
from syncer.errors import AuthenticationError, EndpointError
from syncer.index.db import AUTHORITY, StateDB


def skip_unless(capable, reason):
    if not capable:
        pytest.skip(reason)


def read_all(endpoint, entry):
    with endpoint.open_entry(entry) as stream:
        chunks = []
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def skip_documents(endpoint):
    documents = endpoint.capabilities.documents
    skip_unless(not documents, "the entries are documents the service renders (DNS zones), not files: "
                "tests/endpoints/test_zone_documents.py writes and restores whole zones")


def listing(endpoint):
    return {entry.path: entry for entry in endpoint.list_entries()}


def test_no_public_method_beyond_what_the_contract_names(harness):
    endpoint = build_raw_endpoint(harness.policy())
    public = {name for name, _ in inspect.getmembers(type(endpoint), inspect.isfunction) if not name.startswith("_")}
    named = {name for name in vars(harness.contract) if not name.startswith("_")}
    assert public <= named, f"{type(endpoint).__name__}: not in the contract: {sorted(public - named)}"
    optional = {"head_sha256": endpoint.capabilities.head_sha256} if harness.contract is Endpoint else {}
    assert public == {name for name in named if optional.get(name, True)}  # the optional ones when declared
    assert endpoint.capabilities.repositories == (harness.contract is not Endpoint)


def test_describe_names_the_endpoint_and_no_secret(harness):
    text = harness.endpoint().describe()
    assert text.startswith(harness.name) or harness.name == "s3" and text.startswith("s3://")
    for secret in ("fake-consumer-secret", "fake-token-secret", "fake-bunny-zone-password", "glpat-fake-token",
                   "testing-secret-key"):
        assert secret not in text


def test_listing_shows_every_entry_with_its_native_checksum(harness):
    harness.seed()
    endpoint = harness.endpoint()
    entries = listing(endpoint)
    expected = harness.expected()
    assert set(entries) == set(expected)
    for path, content in expected.items():
        entry = entries[path]
        assert entry.algorithm == endpoint.capabilities.checksum
        if isinstance(content, bytes):
            assert entry.size == len(content)
            assert entry.checksum == harness.checksum_of(content)
        else:
            assert entry.checksum == content  # a precomputed digest (repositories: branches and tags)


def test_open_entry_returns_the_exact_bytes(file_harness):
    file_harness.seed()
    endpoint = file_harness.endpoint()
    skip_unless(endpoint.capabilities.can_read, endpoint.capabilities.reason)
    entries = listing(endpoint)
    for path, content in file_harness.expected().items():
        data = read_all(endpoint, entries[path])
        if isinstance(content, bytes):
            assert data == content
        else:  # a document: reading gives back what the listed digest says
            assert endpoint.capabilities.documents.digest(path, data) == content


def test_write_entry_stores_the_file_with_its_checksum(file_harness, tmp_path):
    file_harness.seed()
    endpoint = file_harness.endpoint()
    skip_unless(endpoint.capabilities.can_write, endpoint.capabilities.reason)
    skip_documents(endpoint)
    source = tmp_path / "upload.bin"
    content = b"restored bytes \x00\xff" * 1000
    source.write_bytes(content)
    digests = {"md5": hashlib.md5(content).hexdigest(), "sha256": hashlib.sha256(content).hexdigest()}
    stored = endpoint.write_entry("Album One/restored.jpg", str(source), digests)
    assert stored.checksum == file_harness.checksum_of(content)
    entries = listing(endpoint)
    assert entries["Album One/restored.jpg"].checksum == file_harness.checksum_of(content)
    assert read_all(endpoint, entries["Album One/restored.jpg"]) == content


def test_write_entry_refuses_bytes_that_do_not_match_the_checksum(file_harness, tmp_path):
    file_harness.seed()
    endpoint = file_harness.endpoint()
    skip_unless(endpoint.capabilities.can_write, endpoint.capabilities.reason)
    skip_documents(endpoint)
    source = tmp_path / "corrupt.bin"
    source.write_bytes(b"these bytes were corrupted on the way")
    wrong = {"md5": hashlib.md5(b"the original").hexdigest(), "sha256": hashlib.sha256(b"the original").hexdigest()}
    with pytest.raises(EndpointError) as raised:
        endpoint.write_entry("Album One/corrupt.jpg", str(source), wrong)
    assert raised.value.permanent
    assert not file_harness.exists("Album One/corrupt.jpg")


def test_a_restore_of_videos_run_twice_uploads_only_what_is_absent_and_then_nothing(file_harness, tmp_path):
    file_harness.seed()
    endpoint = file_harness.endpoint()
    skip_unless(endpoint.capabilities.can_write, endpoint.capabilities.reason)
    skip_documents(endpoint)
    local = {**file_harness.expected(), **file_harness.seed_videos(),
             "Album One/lost clip.mov": b"only the backup" * 99}
    for path, content in local.items():
        (tmp_path / "staging" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "staging" / path).write_bytes(content)
    first = {item["path"]: item for item in upload_files(endpoint, tmp_path / "staging", 2)}
    assert {path for path, item in first.items() if item["status"] == "uploaded"} == {"Album One/lost clip.mov"}
    assert {item["status"] for item in first.values()} <= {"uploaded", "present", "present_unverifiable"}
    assert file_harness.exists("Album One/lost clip.mov")
    second = {item["path"]: item["status"] for item in upload_files(file_harness.endpoint(), tmp_path / "staging", 2)}
    assert set(second) == set(local) and set(second.values()) <= {"present", "present_unverifiable"}
    unverifiable = {path for path, status in second.items() if status == "present_unverifiable"}
    assert unverifiable == ({"Album One/phone.mov"} if file_harness.name == "smugmug" else set())


def test_dry_run_writes_and_deletes_nothing(file_harness, tmp_path):
    file_harness.seed()
    endpoint = file_harness.endpoint(dry_run=True)
    skip_unless(endpoint.capabilities.can_write, endpoint.capabilities.reason)
    skip_documents(endpoint)
    source = tmp_path / "new.bin"
    source.write_bytes(b"new")
    endpoint.write_entry("Album One/new.jpg", str(source), {"md5": hashlib.md5(b"new").hexdigest(),
                                                            "sha256": hashlib.sha256(b"new").hexdigest()})
    endpoint.delete_entry("Album One/second.jpg")
    assert not file_harness.exists("Album One/new.jpg")
    assert file_harness.exists("Album One/second.jpg")
    assert [operation for operation, _ in endpoint.planned] == ["upload", "delete"]


def test_delete_entry_removes_it_and_a_later_read_fails_permanently(file_harness):
    file_harness.seed()
    endpoint = file_harness.endpoint()
    skip_unless(endpoint.capabilities.can_delete, endpoint.capabilities.reason)
    entry = listing(endpoint)["Album One/second.jpg"]
    endpoint.delete_entry("Album One/second.jpg")
    assert "Album One/second.jpg" not in listing(endpoint)
    assert not file_harness.exists("Album One/second.jpg")
    with pytest.raises(EndpointError) as raised:
        read_all(endpoint, entry)
    assert raised.value.permanent


def test_hostile_remote_names_are_flagged_not_trusted(harness):
    skip_unless(not harness.hostile_skip, harness.hostile_skip)
    harness.seed()
    hostile = harness.seed_hostile()
    entries = listing(harness.endpoint())
    for path in hostile:
        assert path in entries, sorted(entries)
        assert entries[path].checksum is None
        assert entries[path].note.startswith("unsafe name")


def test_refused_credentials_give_one_message_naming_the_key(harness):
    skip_unless(not harness.credentials_skip, harness.credentials_skip)
    endpoint, key = harness.bad_credentials()
    with pytest.raises(AuthenticationError) as raised:
        list(endpoint.list_entries())
    message = str(raised.value)
    assert key in message and "credentials.env" in message
    assert harness.name in message or harness.fake.url in message
    assert "revoked" not in message and "wrong-zone-password" not in message


def test_rate_limit_is_retried_after_the_servers_retry_after(harness):
    skip_unless(not harness.rate_limit_skip, harness.rate_limit_skip)
    harness.seed()
    path = harness.inject_rate_limit()
    entries = listing(harness.endpoint())
    assert set(entries) == set(harness.expected())
    assert harness.fake.count_requests(path_contains=path) >= 2


def test_verify_records_the_listing_in_the_index(harness, tmp_path):
    harness.seed()
    db = StateDB(tmp_path / "state")
    skipped = index_authority(db, harness.policy(), harness.endpoint())
    stored = {row[0] for row in db.iterate_files("dataset", AUTHORITY)}
    assert stored == set(harness.expected())
    assert skipped == []


def test_check_access_names_what_it_reached_and_no_secret(harness):
    harness.seed()
    detail = harness.endpoint().check_access()
    assert isinstance(detail, str) and detail
    for secret in ("fake-consumer-secret", "fake-token-secret", "fake-bunny-zone-password", "glpat-fake-token",
                   "testing-secret-key", "fake-access-token"):
        assert secret not in detail


def test_check_access_with_refused_credentials_raises_naming_the_key(harness):
    skip_unless(not harness.credentials_skip, harness.credentials_skip)
    endpoint, key = harness.bad_credentials()
    with pytest.raises(AuthenticationError) as raised:
        endpoint.check_access()
    assert key in str(raised.value) and "credentials.env" in str(raised.value)


def test_check_access_of_an_unreachable_authority_raises(harness):
    if harness.name == "local":
        harness.root.rmdir()
    elif harness.name == "s3":
        harness.client.delete_bucket(Bucket=harness.bucket)
    else:
        harness.fake.stop()
    with pytest.raises(EndpointError):
        build_raw_endpoint(harness.policy()).check_access()
