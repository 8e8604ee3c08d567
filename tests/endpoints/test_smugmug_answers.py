"""SmugMug as it really answers (cloud-apis.md, captured from the live service): videos
with and without archives, items with no Archived* field at all, paging past Total and
empty listings, real serials, and uploads that replace rather than duplicate."""

import hashlib
import json

import pytest

from syncer.endpoints.smugmug import PAGE_SIZE, SmugMugEndpoint
from syncer.verdict import NOTHING_TO_DOWNLOAD
from tests.fakes import smugmug


@pytest.fixture
def fake():
    with smugmug.FakeSmugMug() as server:
        yield server


def endpoint_of(fake):
    return SmugMugEndpoint(smugmug.CREDENTIALS, api_url=fake.url, upload_url=fake.url + "/")


def answer_of(fake, uri, **parameters):
    """The Response document the fake answers to a signed GET of `uri`."""
    return endpoint_of(fake).session.get(fake.url + uri, params=parameters or None).json()["Response"]


def listing(fake):
    return {entry.path: entry for entry in endpoint_of(fake).list_entries()}


def read_all(endpoint, entry):
    with endpoint.open_entry(entry) as stream:
        return stream.read()


def test_a_video_with_its_archive_is_verified_like_a_photo(fake):
    album = fake.add_album("/Trip")
    fake.add_image(album, "clip.mov", b"the original .mov bytes", serial=2)
    endpoint = endpoint_of(fake)
    [served] = answer_of(fake, f"/api/v2/album/{album}!images", start=1, count=PAGE_SIZE)["AlbumImage"]
    assert served["IsVideo"] and served["Format"] == "MP4" and served["Serial"] == 2
    assert served["ArchivedSize"] == served["OriginalSize"] and served["ArchivedUri"].endswith("-D.jpg")
    entry = {entry.path: entry for entry in endpoint.list_entries()}["Trip/clip.mov"]
    assert (entry.checksum, entry.algorithm) == (hashlib.md5(b"the original .mov bytes").hexdigest(), "md5")
    assert entry.size == len(b"the original .mov bytes") and entry.note is None
    assert read_all(endpoint, entry) == b"the original .mov bytes"
    assert fake.count_requests(path_contains="!largestvideo") == 0  # the archive is the original


@pytest.mark.parametrize("linked", [True, False], ids=["uris-largestvideo", "own-uri"])
def test_a_video_without_archive_comes_through_largestvideo_on_its_own_uri_and_is_unverifiable(fake, linked):
    fake.link_largest_video = linked
    album = fake.add_album("/Trip")
    key = fake.add_image(album, "phone.mov", b"original", archived=False, reencoded=b"MP4 re-encoding", serial=3)
    endpoint = endpoint_of(fake)
    entry = {entry.path: entry for entry in endpoint.list_entries()}["Trip/phone.mov"]
    assert entry.checksum is None and entry.size is None
    assert "MP4 bytes under a .mov name" in entry.note and not entry.note.startswith(NOTHING_TO_DOWNLOAD)
    assert read_all(endpoint, entry) == b"MP4 re-encoding"
    assert fake.count_requests("GET", f"/api/v2/image/{key}-3!largestvideo") == 1
    assert fake.count_requests(path_contains=f"{key}-0") == 0  # never a Uri built as <key>-0


def test_items_with_no_archived_field_are_listed_with_nothing_to_download(fake):
    protected = fake.add_album("/Protected", allow_downloads=False)
    fake.add_image(protected, "a.jpg", b"a")
    fake.add_image(protected, "b.jpg", b"b")
    entries = listing(fake)
    assert set(entries) == {"Protected/a.jpg", "Protected/b.jpg"}
    for entry in entries.values():
        assert entry.checksum is None and entry.size is None and entry.ref is None
        assert entry.note == NOTHING_TO_DOWNLOAD + "SmugMug offers no original"


def images_requests(fake):
    return fake.count_requests("GET", "!images")


def test_a_full_last_page_offers_a_next_page_past_total_and_the_walk_stops_on_the_empty_one(fake):
    album = fake.add_album("/Full")
    for number in range(PAGE_SIZE):
        fake.add_image(album, f"{number:03d}.jpg", b"%d" % number)
    endpoint = endpoint_of(fake)
    first = answer_of(fake, f"/api/v2/album/{album}!images", start=1, count=PAGE_SIZE)
    assert first["Pages"]["Total"] == PAGE_SIZE and f"start={PAGE_SIZE + 1}" in first["Pages"]["NextPage"]
    assert "Misaligned" not in first["Pages"]
    before = images_requests(fake)
    assert len(list(endpoint.list_entries())) == PAGE_SIZE
    assert images_requests(fake) - before == 2  # the page past Total is empty: the walk ends there


def test_an_empty_listing_has_no_key_and_a_negative_last_page(fake):
    album = fake.add_album("/Empty")
    answer = answer_of(fake, f"/api/v2/album/{album}!images", start=1, count=PAGE_SIZE)
    assert "AlbumImage" not in answer and answer["Pages"]["Total"] == 0 and answer["Pages"]["Count"] == 0
    assert f"start=-{PAGE_SIZE - 1}" in answer["Pages"]["LastPage"]
    assert listing(fake) == {}
    assert images_requests(fake) == 2


def test_a_next_page_on_every_page_never_makes_the_walk_loop(fake):
    fake.endless_next_page = True
    album = fake.add_album("/Trip")
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        fake.add_image(album, name, name.encode())
    assert set(listing(fake)) == {"Trip/a.jpg", "Trip/b.jpg", "Trip/c.jpg"}
    assert images_requests(fake) == 2  # the empty page (Start beyond Total) ends it


def test_answers_are_of_real_size(fake):
    album = fake.add_album("/Trip")
    fake.add_image(album, "a.jpg", b"a")
    answer = answer_of(fake, f"/api/v2/album/{album}!images", start=1, count=PAGE_SIZE)
    [image] = answer["AlbumImage"]
    assert len(json.dumps(image)) > 3000 and len(image["Uris"]) > 15  # real AlbumImages run to ~4 KB


def test_an_upload_to_a_new_name_adds_an_image_and_the_answer_is_checked(fake, tmp_path):
    album = fake.add_album("/Trip")
    fake.add_image(album, "old.jpg", b"old")
    source = tmp_path / "new.jpg"
    source.write_bytes(b"new photo")
    stored = endpoint_of(fake).write_entry("Trip/new.jpg", str(source), {"md5": hashlib.md5(b"new photo").hexdigest()})
    assert stored.checksum == hashlib.md5(b"new photo").hexdigest()
    assert fake.upload_log == [{"album": "/Trip", "file_name": "new.jpg", "size": 9,
                                "md5": hashlib.md5(b"new photo").hexdigest(), "replaced": None, "stat": "ok"}]
    assert sorted(listing(fake)) == ["Trip/new.jpg", "Trip/old.jpg"]


def test_an_upload_without_a_digest_takes_the_files_md5_and_none_of_a_file_that_changes_while_read(
        fake, tmp_path, monkeypatch):
    from syncer.endpoints import smugmug as endpoint_module
    from syncer.errors import EndpointError
    from syncer.index.hashing import FileChanged

    fake.add_album("/Trip")
    source = tmp_path / "new.jpg"
    source.write_bytes(b"new photo")
    assert endpoint_of(fake).write_entry("Trip/new.jpg", str(source), {}).checksum == \
        hashlib.md5(b"new photo").hexdigest()

    def changing(path, algorithms):
        raise FileChanged(path)

    monkeypatch.setattr(endpoint_module, "hash_file", changing)
    with pytest.raises(EndpointError, match="changed while its MD5 was taken; Trip/other.jpg was not uploaded"):
        endpoint_of(fake).write_entry("Trip/other.jpg", str(source), {})
    assert [log["file_name"] for log in fake.upload_log] == ["new.jpg"]


def test_an_upload_to_a_name_that_is_there_replaces_that_image_never_adds_a_second(fake, tmp_path):
    album = fake.add_album("/Trip")
    first = fake.add_image(album, "IMG_1.jpg", b"first")
    second = fake.add_image(album, "IMG_1.jpg", b"second, changed upstream")
    source = tmp_path / "restored.jpg"
    source.write_bytes(b"second, as backed up")
    endpoint_of(fake).write_entry(f"Trip/IMG_1~{second}.jpg", str(source),
                                  {"md5": hashlib.md5(b"second, as backed up").hexdigest()})
    assert [log["replaced"] for log in fake.upload_log] == [second]
    assert fake.upload_log[0]["file_name"] == "IMG_1.jpg"  # its own FileName kept, not the local "~key" name
    entries = listing(fake)
    assert sorted(entries) == ["Trip/IMG_1.jpg", f"Trip/IMG_1~{second}.jpg"]
    assert entries[f"Trip/IMG_1~{second}.jpg"].checksum == hashlib.md5(b"second, as backed up").hexdigest()
    assert fake.images[first]["data"] == b"first"
