"""The scratch tables: an endpoint's listing looked up by path from a throw-away file."""

from pathlib import Path

from syncer.endpoints.base import Entry
from syncer.index.scratch import BATCH, ListingStore


def test_a_listing_store_gives_back_what_was_listed_the_last_of_a_path_winning(tmp_path):
    listed = (Entry(f"a/{number}", number, f"{number:032x}", "md5", ref={"url": f"https://x/{number}"})
              for number in range(BATCH + 10))  # more than one batch, taken from an iterator
    with ListingStore(tmp_path / "listing.sqlite").load(listed) as store:
        assert len(store) == BATCH + 10
        found = store.get("a/7")
        assert found == Entry("a/7", 7, f"{7:032x}", "md5") and found.ref == {"url": "https://x/7"}
        assert store.get("a/missing") is None
        store.load([Entry("a/7", 70, note="listed again", ref=Path("/elsewhere"))])
        assert store.get("a/7").size == 70 and store.get("a/7").ref == Path("/elsewhere")
        assert len(store) == BATCH + 10
    assert not (tmp_path / "listing.sqlite").exists()
