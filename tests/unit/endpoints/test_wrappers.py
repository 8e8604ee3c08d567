"""The endpoint wrappers: retry decides from the endpoint's own classification and the
server's Retry-After; the concurrency limit holds a slot per open transfer."""

import io
import threading

import pytest

from syncer.endpoints.base import Capabilities, Endpoint, Entry, MirrorEndpoint
from syncer.endpoints.http import ResponseStream, retry_after_seconds
from syncer.endpoints.wrappers import DryRunEndpoint, DryRunMirrors, LimitedEndpoint, RetryingEndpoint, RetryingMirrors
from syncer.errors import AuthenticationError, EndpointError
from tests.support import CountedListing


class Flaky:
    capabilities = Capabilities(checksum="sha256")

    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def describe(self):
        return "flaky"

    def list_entries(self):
        self.calls += 1
        if self.failures:
            yield Entry("first", 1)
            raise self.failures.pop(0)
        yield Entry("first", 1)
        yield Entry("second", 2)

    def open_entry(self, entry):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return io.BytesIO(b"data")

    def update_mirror(self, project, target):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return target

    def push_refs(self, mirror, project):
        raise AssertionError("a dry run pushed")

    def create_project(self, namespace, path):
        raise AssertionError("a dry run created a project")


def test_temporary_failures_are_retried_waiting_what_the_server_asked():
    waits = []
    inner = Flaky([EndpointError("429", retry_after=7), EndpointError("503")])
    endpoint = RetryingEndpoint(inner, attempts=3, base_delay=2, sleep=waits.append)
    assert endpoint.open_entry(Entry("x", 4)).read() == b"data"
    assert inner.calls == 3
    assert waits[0] == 7
    assert 2 <= waits[1] <= 4  # second attempt: 2 * base_delay, with jitter in [0.5, 1]


def test_a_listing_that_fails_half_way_is_listed_again_whole():
    endpoint = RetryingEndpoint(Flaky([EndpointError("reset")]), sleep=lambda seconds: None)
    assert [entry.path for entry in endpoint.list_entries()] == ["first", "second"]


def test_permanent_failures_and_refused_credentials_are_not_retried():
    for error in (EndpointError("404", permanent=True), AuthenticationError("401")):
        inner = Flaky([error])
        with pytest.raises(EndpointError):
            RetryingEndpoint(inner, sleep=lambda seconds: None).open_entry(Entry("x", 1))
        assert inner.calls == 1


def test_a_server_asking_for_a_long_pause_is_reported_not_waited_for():
    waits = []
    endpoint = RetryingEndpoint(Flaky([EndpointError("429", retry_after=3600)]), max_wait=300, sleep=waits.append)
    with pytest.raises(EndpointError, match="asks to wait 3600s"):
        endpoint.open_entry(Entry("x", 1))
    assert waits == []


def test_the_mirror_contracts_operations_are_retried_too():
    inner = Flaky([EndpointError("503")])
    assert RetryingMirrors(inner, sleep=lambda seconds: None).update_mirror({}, "/srv/x.git") == "/srv/x.git"
    assert inner.calls == 2


def test_retry_after_reads_seconds_dates_and_rate_limit_resets():
    assert retry_after_seconds({"Retry-After": "12"}) == 12
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480) == 10
    assert retry_after_seconds({"X-RateLimit-Reset": "30"}) == 30
    assert retry_after_seconds({"X-RateLimit-Reset": "2000000000"}, now=1999999990) == 10
    assert retry_after_seconds({}) is None


def test_the_concurrency_limit_holds_a_slot_until_the_stream_is_closed():
    endpoint = LimitedEndpoint(Flaky([]), concurrency=2)
    first = endpoint.open_entry(Entry("a", 1))
    second = endpoint.open_entry(Entry("b", 1))
    blocked = threading.Event()
    opened = threading.Event()

    def third():
        blocked.set()
        endpoint.open_entry(Entry("c", 1)).close()
        opened.set()

    worker = threading.Thread(target=third)
    worker.start()
    blocked.wait()
    assert not opened.wait(0.2)
    first.close()
    assert opened.wait(5)
    second.close()
    worker.join()


def test_dry_run_turns_every_write_into_a_plan():
    endpoint = DryRunEndpoint(Flaky([]))
    endpoint.delete_entry("gone")
    mirrors = DryRunMirrors(Flaky([]))
    mirrors.create_project("team", "tool")
    mirrors.push_refs("/srv/x.git", {"path_with_namespace": "team/tool"})
    assert endpoint.planned == [("delete", "gone")]
    assert mirrors.planned == [("create_project", "team"), ("push_refs", "/srv/x.git")]


def test_wrappers_forward_exactly_the_methods_of_their_contract():
    def public_methods(cls):
        return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}

    def contract(protocol):
        return {name for name in vars(protocol) if not name.startswith("_") and name != "capabilities"}

    for wrapper in (RetryingEndpoint, LimitedEndpoint, DryRunEndpoint):
        assert public_methods(wrapper) == contract(Endpoint), wrapper
    for wrapper in (RetryingMirrors, DryRunMirrors):
        assert public_methods(wrapper) == contract(MirrorEndpoint), wrapper
    with pytest.raises(AttributeError):
        RetryingEndpoint(Flaky([])).update_mirror  # noqa: B018 - nothing outside the contract is forwarded


def test_check_access_is_forwarded_and_retried_when_temporary():
    class Checked(Flaky):
        def check_access(self):
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            return "user tester"

    inner = Checked([EndpointError("503")])
    endpoint = DryRunEndpoint(LimitedEndpoint(RetryingEndpoint(inner, attempts=2, sleep=lambda _: None)))
    assert endpoint.check_access() == "user tester" and inner.calls == 2
    refused = Checked([AuthenticationError("401")])
    with pytest.raises(AuthenticationError):
        RetryingMirrors(refused, attempts=3, sleep=lambda _: None).check_access()
    assert refused.calls == 1


def test_the_retried_listing_holds_no_entry_in_memory_and_yields_each_once_in_order():
    inner = CountedListing(3000)
    listed = RetryingEndpoint(inner, sleep=lambda seconds: None).list_entries()
    first = next(listed)  # the whole listing is taken (and spooled) before the first entry
    assert inner.most_alive <= 2, inner.most_alive  # a list of the entries would keep all 3000
    rest = [(entry.path, entry.ref["key"]) for entry in listed]
    assert (first.path, first.ref) == ("d/00000", {"key": 0})
    assert rest == [(f"d/{number:05d}", number) for number in range(1, 3000)]
    assert inner.alive == 0


def test_a_connection_broken_while_a_body_is_read_is_a_temporary_endpoint_error():
    from urllib3.exceptions import ProtocolError

    class Broken:
        decode_content = False

        def read(self, size=None):
            raise ProtocolError("Connection broken", ConnectionResetError(104, "Connection reset by peer"))

    response = type("Response", (), {"raw": Broken(), "close": lambda self: None})()
    with pytest.raises(EndpointError, match="connection broke while reading") as raised:
        ResponseStream(response).read(100)
    assert not raised.value.permanent  # the retry wrapper and pull's next run try again
