"""Manifests are streamed: reading, indexing and comparing one holds nothing per entry."""

import json
import random
import tracemalloc
import types

import pytest

from syncer.actions.drill import choose_sample
from syncer.actions.offsite import compare_sorted, iterate_manifest, load_manifest
from syncer.errors import OperationalError
from syncer.index.manifest import ManifestStore


def entry(number):
    return {"path": f"d{number // 1000:03d}/f{number:07d}.txt", "size": number % 70, "mtime_ns": number,
            "md5": None, "sha256": f"{number:064x}"}


def write_manifest(path, count):
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"syncer_manifest": 1, "dataset": "d", "root": "/data"}) + "\n")
        for number in range(count):
            out.write(json.dumps(entry(number)) + "\n")
    return path


def indexed_rows(count):
    """What StateDB.iterate_files yields for the same files, one of them changed."""
    for number in range(count):
        item = entry(number)
        yield item["path"], item["size"], item["mtime_ns"], None, item["sha256"] if number != 7 else "0" * 64


def test_the_manifest_reader_is_an_iterator_that_reads_as_it_goes(tmp_path):
    manifest = write_manifest(tmp_path / "m.jsonl", 100)
    entries = iterate_manifest(manifest)
    assert isinstance(entries, types.GeneratorType)
    assert next(entries) == entry(0)
    assert sum(1 for _ in entries) == 99


def test_a_manifest_out_of_path_order_is_refused_by_the_merge(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"syncer_manifest": 1}) + "\n" + json.dumps(entry(2)) + "\n"
                        + json.dumps(entry(1)) + "\n")
    with pytest.raises(OperationalError, match="not in path order"):
        compare_sorted(indexed_rows(3), iterate_manifest(manifest), manifest, dict.fromkeys(COUNTS, 0))


COUNTS = ("matching", "differing", "not_in_snapshot", "only_in_snapshot", "unverified")


def test_the_offsite_comparison_merges_sorted_streams(tmp_path):
    manifest = write_manifest(tmp_path / "m.jsonl", 10)
    counts = dict.fromkeys(COUNTS, 0)
    local = [row for row in indexed_rows(12) if row[0] != entry(3)["path"]]
    compare_sorted(iter(local), iterate_manifest(manifest), manifest, counts)
    assert counts == {"matching": 8, "differing": 1, "not_in_snapshot": 2, "only_in_snapshot": 1, "unverified": 0}


def peak_bytes(tmp_path, count):
    """Peak Python allocations while a manifest of `count` entries is indexed, sampled,
    walked in full and compared with an index of the same files."""
    manifest = write_manifest(tmp_path / f"m{count}.jsonl", count)
    tracemalloc.start()
    try:
        with load_manifest(manifest, tmp_path / f"m{count}.sqlite") as store:
            choose_sample(store, ("count", 16), random.Random(1))
            assert sum(1 for _ in store.files()) == count
            assert store.get(entry(count - 1)["path"]) == entry(count - 1)
        counts = dict.fromkeys(COUNTS, 0)
        compare_sorted(indexed_rows(count), iterate_manifest(manifest), manifest, counts)
        assert counts["matching"] == count - 1
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_manifest(tmp_path):
    small, large = peak_bytes(tmp_path, 5_000), peak_bytes(tmp_path, 20_000)
    # A dict of the entries would take ~1 KB each: 15 MB more at 4x. choose_sample's two
    # arrays (16 bytes a file) are the one thing allowed to grow.
    assert large - small < 20 * 15_000 + 200_000, (small, large)


def test_store_lookups(tmp_path):
    with ManifestStore(tmp_path / "s.sqlite").load(entry(number) for number in range(3)) as store:
        assert entry(1)["path"] in store and "nope" not in store
        assert store.get("nope") is None and store.algorithms() == ("sha256",)
    assert not (tmp_path / "s.sqlite").exists()
