"""The dual forms cloud-apis.md leaves UNCONFIRMED, and paging, each served both ways by
the fakes: the clients must accept either."""

import hashlib
import warnings

import pytest

from syncer.endpoints.bunnycdn import BunnyEndpoint
from syncer.endpoints.factory import wrap_endpoint
from syncer.endpoints.gitlab import GitLabEndpoint
from syncer.endpoints.s3 import S3Endpoint
from syncer.endpoints.smugmug import SmugMugEndpoint
from syncer.errors import EndpointError
from tests.fakes import bunny, gitlab, smugmug
from tests.fakes.http import FakeServer, Response


@pytest.fixture
def smugmug_fake():
    with smugmug.FakeSmugMug() as fake:
        album = fake.add_album("/Trip")
        fake.add_image(album, "a.jpg", b"a")
        fake.add_image(album, "b.jpg", b"b", video=True, archived=False)
        yield fake


def smugmug_endpoint(fake):
    return SmugMugEndpoint(smugmug.CREDENTIALS, api_url=fake.url, upload_url=fake.url + "/")


@pytest.mark.parametrize("short", [False, True], ids=["uri-objects", "short-uris"])
def test_smugmug_uris_as_objects_or_strings(smugmug_fake, short):
    smugmug_fake.short_uris_always = short
    entries = {entry.path: entry for entry in smugmug_endpoint(smugmug_fake).list_entries()}
    assert entries["Trip/a.jpg"].checksum == hashlib.md5(b"a").hexdigest()
    video = next(image for image in smugmug_fake.images.values() if image["FileName"] == "b.jpg")
    assert entries["Trip/b.jpg"].ref["url"].endswith(".mp4")  # found through Uris.LargestVideo
    own_uri = f"/api/v2/image/{video['ImageKey']}-{video['serial']}"
    assert smugmug_fake.count_requests("GET", own_uri + "!largestvideo") == 1


@pytest.mark.parametrize("form", ["base64", "hex", "either"])
def test_smugmug_upload_whichever_content_md5_form_is_enforced(smugmug_fake, tmp_path, form):
    smugmug_fake.content_md5 = form
    source = tmp_path / "new.jpg"
    source.write_bytes(b"new photo")
    digests = {"md5": hashlib.md5(b"new photo").hexdigest()}
    smugmug_endpoint(smugmug_fake).write_entry("Trip/new.jpg", str(source), digests)
    assert smugmug_fake.uploads == 1


def test_smugmug_upload_is_checked_even_when_content_md5_is_ignored(smugmug_fake, tmp_path):
    smugmug_fake.content_md5 = "ignore"
    source = tmp_path / "new.jpg"
    source.write_bytes(b"corrupted on the way")
    with pytest.raises(EndpointError, match="arrived corrupted") as raised:
        smugmug_endpoint(smugmug_fake).write_entry("Trip/new.jpg", str(source),
                                                   {"md5": hashlib.md5(b"the original").hexdigest()})
    assert raised.value.permanent


def test_smugmug_stat_fail_answered_as_http_200_is_an_error(smugmug_fake, tmp_path):
    source = tmp_path / "x.jpg"
    source.write_bytes(b"x")
    smugmug_fake.inject(200, body={"stat": "fail", "code": 5, "message": "system error"}, method="POST")
    with pytest.raises(EndpointError, match="system error"):
        smugmug_endpoint(smugmug_fake).write_entry("Trip/x.jpg", str(source), {"md5": hashlib.md5(b"x").hexdigest()})


def test_smugmug_reused_nonce_is_refused_by_the_fake(smugmug_fake):
    import requests

    endpoint = smugmug_endpoint(smugmug_fake)
    prepared = endpoint.session.prepare_request(requests.Request("GET", smugmug_fake.url + "/api/v2!authuser"))
    first = endpoint.session.send(prepared)
    again = endpoint.session.send(prepared)
    assert first.status_code == 200
    assert again.status_code == 401 and "nonce_used" in again.text


@pytest.mark.parametrize("missing", ["404", "empty"])
@pytest.mark.parametrize("milliseconds", [True, False])
def test_bunny_missing_folder_as_404_or_empty_and_times_with_or_without_milliseconds(missing, milliseconds):
    with bunny.FakeBunny(zone="files", missing_directory=missing) as fake:
        fake.milliseconds = milliseconds
        fake.put_file("present/a.txt", b"a")
        assert list(BunnyEndpoint("files", bunny.ACCESS_KEY, "absent", fake.url).list_entries()) == []
        [entry] = BunnyEndpoint("files", bunny.ACCESS_KEY, "present", fake.url).list_entries()
        assert entry.checksum == hashlib.sha256(b"a").hexdigest()  # lower-cased from Bunny's upper case
        assert int(entry.mtime) == 1773820800


def test_gitlab_pages_follow_link_headers_built_from_the_servers_address(tmp_path):
    with gitlab.FakeGitLab(tmp_path / "srv") as fake:
        for number in range(230):
            fake.add_project("big", f"p{number:03d}", repository=False)
        endpoint = GitLabEndpoint(fake.url, ["big"], gitlab.TOKEN)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # python-gitlab warns when Link points elsewhere
            projects = endpoint.list_projects()
        assert len(projects) == 230
        assert fake.count_requests("GET", "/api/v4/groups/big/projects") == 3


class UnavailableS3(FakeServer):
    """An S3 server that answers every request 503 SlowDown."""

    def handle(self, request):
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return Response(503, body, content_type="application/xml")


def test_s3_is_retried_by_the_wrapper_alone_one_request_per_attempt():
    with UnavailableS3() as server:
        raw = S3Endpoint("bucket", "data", {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}, server.url)
        endpoint = wrap_endpoint(raw, retry={"attempts": 3, "sleep": lambda seconds: None})
        with pytest.raises(EndpointError, match="SlowDown") as raised:
            list(endpoint.list_entries())
        assert not raised.value.permanent
        assert server.count_requests() == 3
