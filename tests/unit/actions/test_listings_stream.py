"""restore --to cloud and pull stream: the authority's listing is looked up from a scratch
file (or merged with the index), never held, and a report counts every item but keeps a
bounded number of them."""

import hashlib
import io
import types

from syncer.actions.common import ItemTally
from syncer.actions.pull import pull_files
from syncer.actions.restore_cloud import upload_files
from syncer.endpoints.base import Entry
from syncer.endpoints.factory import wrap_endpoint
from syncer.index.db import LOCAL, StateDB
from tests.support import CountedListing


class Service(CountedListing):
    """An authority of `count` listed files (the Endpoint contract, in memory) whose
    contents are `contents` (else its path) and that records what is written."""

    def __init__(self, count, contents):
        super().__init__(count)
        self.contents, self.written = contents, []

    def entry(self, number):
        path = f"d/{number:05d}"
        content = self.contents.get(path, path.encode())
        return Entry(path, len(content), hashlib.sha256(content).hexdigest(), "sha256", ref=path)

    def write_entry(self, path, source, digests):
        self.written.append(path)

    def open_entry(self, entry):
        return io.BytesIO(self.contents.get(entry.path, entry.path.encode()))


def test_the_upload_compares_with_a_listing_it_never_holds(tmp_path):
    staging = tmp_path / "staging"
    (staging / "d").mkdir(parents=True)
    for number in range(0, 3000, 100):  # 30 restored files: the same, differing, or missing upstream
        path = f"d/{number:05d}"
        (staging / path).write_bytes(path.encode())
    (staging / "d" / "new").write_bytes(b"only in the snapshot")
    service = Service(3000, {"d/00100": b"other", "d/00200": b"changed upstream"})
    items = upload_files(wrap_endpoint(service, concurrency=2), staging, 2)
    assert iter(items) is items  # handed out as decided, never collected first
    statuses = {item["path"]: (item["status"], item.get("reason")) for item in items}
    assert service.most_alive <= 3, service.most_alive  # a dict of the listing keeps all 3000 alive
    assert statuses["d/00100"] == statuses["d/00200"] == ("uploaded", "differs at the authority")
    assert statuses["d/new"] == ("uploaded", "missing at the authority")
    assert sorted(path for path, (status, _) in statuses.items() if status == "present") == [
        f"d/{number:05d}" for number in range(0, 3000, 100) if number not in (100, 200)]
    assert sorted(service.written) == ["d/00100", "d/00200", "d/new"]
    assert list(tmp_path.iterdir()) == [staging]  # the scratch listing is removed


def test_the_report_counts_every_item_and_keeps_the_first_by_path():
    tally = ItemTally(limit=10)
    tally.add_all({"path": f"f{number:03d}", "status": "uploaded"} for number in reversed(range(45)))
    tally.add_all({"path": f"p{number:03d}", "status": "present"} for number in range(1000))
    tally.add({"path": "a-failed", "status": "failed", "reason": "refused"})
    assert tally.counts == {"uploaded": 45, "present": 1000, "failed": 1}
    assert [item["path"] for item in tally.kept_items()] == ["a-failed"] + [f"f{number:03d}" for number in range(9)]
    assert tally.left_off == 36


def test_a_pull_merges_a_listing_it_never_holds_with_the_index(tmp_path):
    local = tmp_path / "local"
    (local / "d").mkdir(parents=True)
    for number in range(3000):
        path = f"d/{number:05d}"
        (local / path).write_bytes(path.encode())
    (local / "d" / "00007").write_bytes(b"changed here")
    (local / "d" / "00008").unlink()
    (local / "d" / "00009").unlink()
    (local / "d" / "mine").write_bytes(b"only here")
    service = Service(3000, {})
    policy = types.SimpleNamespace(name="d", path=local, exclude=[])
    db = StateDB(tmp_path / "state")
    items = ItemTally(quiet=("up_to_date",))
    pull_files(policy, db, wrap_endpoint(service, concurrency=2), 2, False, False, items)
    assert service.most_alive <= 3, service.most_alive  # a dict or a list of the listing keeps all 3000
    assert items.counts == {"up_to_date": 2997, "downloaded": 3, "local_only": 1}
    assert [(item["path"], item["status"]) for item in items.kept_items()] == [
        ("d/00007", "downloaded"), ("d/00008", "downloaded"), ("d/00009", "downloaded"), ("d/mine", "local_only")]
    assert (local / "d" / "00007").read_bytes() == b"d/00007" and (local / "d" / "00009").is_file()
    indexed = {path: sha256 for path, _, _, _, sha256 in db.iterate_files("d", LOCAL)}
    assert indexed["d/00008"] == hashlib.sha256(b"d/00008").hexdigest() and len(indexed) == 3001
    assert list((tmp_path / "state").glob("pull-*")) == []  # the scratch listings are removed
