"""Pure parts of the offsite actions: manifest paths, escapes, samples, prune timing."""

import random
import time

import pytest

from syncer.actions.audit import assess
from syncer.actions.drill import choose_sample, parse_sample
from syncer.actions.offsite import expected_digest, is_escaping, snapshot_layout
from syncer.errors import OperationalError, UsageError
from syncer.index.manifest import ManifestStore


@pytest.mark.parametrize("path, escaping", [
    ("a/b.txt", False), ("é/写真.png", False), ("../x", True), ("a/../../x", True), ("/etc/passwd", True),
    ("", True), ("a//b", True), ("a/./b", False),
])
def test_is_escaping(path, escaping):
    assert is_escaping(path) is escaping


def test_snapshot_layout_finds_data_and_manifest():
    snapshot = {"short_id": "ab", "paths": ["/srv/photos", "/var/lib/syncer/manifests/photos"]}
    assert snapshot_layout(snapshot, "photos") == ("/srv/photos",
                                                    "/var/lib/syncer/manifests/photos/syncer-manifest.jsonl")
    with pytest.raises(OperationalError, match="not made by syncer push"):
        snapshot_layout({"short_id": "ab", "paths": ["/srv/photos"]}, "photos")


def test_expected_digest_prefers_sha256_and_admits_none():
    assert expected_digest({"md5": "m", "sha256": "s"}) == ("sha256", "s")
    assert expected_digest({"md5": "m", "sha256": None}) == ("md5", "m")
    assert expected_digest({"md5": None}) == (None, None)


@pytest.mark.parametrize("spec, parsed", [
    ("20", ("count", 20)), ("5%", ("percent", 5.0)), ("500M", ("bytes", 500 * 2**20)), ("2G", ("bytes", 2 * 2**30)),
    ("100k", ("bytes", 100 * 2**10)),
])
def test_parse_sample(spec, parsed):
    assert parse_sample(spec) == parsed


@pytest.mark.parametrize("spec", ["0", "-1", "abc", "150%", "1.5"])
def test_parse_sample_refuses_nonsense(spec):
    with pytest.raises(UsageError):
        parse_sample(spec)


@pytest.fixture
def entries(tmp_path):
    count = 50
    listed = [{"path": f"f{i:03d}", "size": i * 10, "mtime_ns": (count - i) * 1000} for i in range(count)]
    with ManifestStore(tmp_path / "manifest.sqlite").load(listed + [{"path": "nodigest", "size": None}]) as store:
        yield store


def test_sample_always_holds_largest_and_newest(entries):
    for seed in range(5):
        chosen = choose_sample(entries, ("count", 5), random.Random(seed))
        assert len(chosen) == 5 and chosen == sorted(chosen)
        assert "f049" in chosen and "f000" in chosen  # largest, newest
        assert "nodigest" not in chosen
    assert choose_sample(entries, ("count", 5), random.Random(3)) == choose_sample(entries, ("count", 5),
                                                                                    random.Random(3))


def test_sample_by_percent_size_and_full(entries):
    assert len(choose_sample(entries, ("percent", 10.0), random.Random(1))) == 5
    by_size = choose_sample(entries, ("bytes", 1000), random.Random(1))
    assert {"f049", "f000"} <= set(by_size)
    assert sum(entries.get(p)["size"] for p in by_size) <= 1000
    assert [entry["path"] for entry in entries.files()] == [f"f{i:03d}" for i in range(50)]
    assert len(entries) == 51 and entries.total_bytes() == sum(i * 10 for i in range(50))


def protection(versioning="not configured", lock=None, lifecycle=()):
    return {"versioning": versioning, "mfa_delete": "not configured",
            "object_lock": lock or {"enabled": False, "mode": None, "days": None, "years": None},
            "lifecycle": list(lifecycle)}


def test_audit_missing_fields_are_never_safe():
    assert any("delete every snapshot" in w for w in assess(protection()))
    assert any("versioning without object lock" in w for w in assess(protection("Enabled")))
    enabled_without_retention = {"enabled": True, "mode": None, "days": None, "years": None}
    assert assess(protection("Enabled", enabled_without_retention))
    assert assess(protection("Enabled", {"enabled": True, "mode": "COMPLIANCE", "days": 30, "years": None})) == []
    expiring = [{"id": "old", "status": "Enabled", "expiration_days": 30, "noncurrent_days": None}]
    locked = {"enabled": True, "mode": "COMPLIANCE", "days": 30, "years": None}
    assert any("expires objects" in w for w in assess(protection("Enabled", locked, expiring)))


def test_split_snapshot_paths_reads_both_orders_and_spaces():
    from syncer.actions.drill import split_snapshot_paths

    assert split_snapshot_paths("/srv/my photos /var/lib/syncer/manifests/p", "p") == [
        ("/srv/my photos", "/var/lib/syncer/manifests/p")]
    assert split_snapshot_paths("/var/lib/syncer/manifests/p /srv/photos", "p") == [
        ("/srv/photos", "/var/lib/syncer/manifests/p")]
    assert split_snapshot_paths("/srv/photos /var/lib/manifests/other", "p") == []


def test_parse_restoring_line():
    from syncer.restic.repository import parse_restoring_line

    line = "restoring <Snapshot 16d35f7d of [/tmp/rt/data /s/manifests/x] at 2026-11-24 20:38:28 +0000 UTC by r@h> to t"
    assert parse_restoring_line(line) == ("16d35f7d", "/tmp/rt/data /s/manifests/x")
    assert parse_restoring_line("nothing") == (None, None)


def test_prune_is_due_by_interval_and_only_with_something_forgotten(tmp_path):

    from syncer.actions.push import prune_due
    from syncer.index.db import StateDB
    from syncer.policy.model import Policy

    def policy(prune):
        return Policy.model_validate({"name": "photos", "path": "/d", "authority": {"type": "local", "path": "/d"},
                                      "offsite": {"repository": "/r", "password_file": "/pw", "prune": prune,
                                                  "retention": {"keep_last": 1}}})

    db = StateDB(tmp_path)
    assert prune_due(policy("weekly"), db, removed_now=1)
    assert not prune_due(policy("weekly"), db, removed_now=0)  # nothing forgotten: nothing to reclaim
    assert not prune_due(policy("never"), db, removed_now=5)
    run = db.start_run("photos", "prune")
    db.finish_run(run, "ok", 0, {})
    assert not prune_due(policy("weekly"), db, removed_now=1)  # pruned moments ago
    assert prune_due(policy("always"), db, removed_now=1)
    assert prune_due(policy("daily"), db, removed_now=1, now=time.time() + 2 * 86400)
    push = db.start_run("photos", "push")
    db.finish_run(push, "ok", 0, {"forgotten": 2})
    assert prune_due(policy("daily"), db, removed_now=0, now=time.time() + 2 * 86400)  # forgotten earlier


def test_forget_runs_when_due_not_on_every_push(tmp_path):
    from syncer.actions.push import forget_due
    from syncer.index.db import StateDB
    from syncer.policy.model import Policy

    def policy(**forget):
        return Policy.model_validate({"name": "photos", "path": "/d", "authority": {"type": "local", "path": "/d"},
                                      "offsite": {"repository": "/r", "password_file": "/pw", **forget,
                                                  "retention": {"keep_last": 1}}})

    db = StateDB(tmp_path)
    assert policy().offsite.forget == "daily"
    assert forget_due(policy(), db)  # never ran
    run = db.start_run("photos", "forget")
    db.finish_run(run, "ok", 0, {"forgotten": 0})
    assert not forget_due(policy(), db)  # ran moments ago
    assert forget_due(policy(forget="always"), db)
    assert forget_due(policy(), db, now=time.time() + 23 * 3600)  # yesterday's ran a little later in the day
    assert not forget_due(policy(forget="weekly"), db, now=time.time() + 2 * 86400)


def test_restore_estimate_counts_restic_start_up_once():
    from syncer.actions.drill import estimate_restore

    mib = 2**20
    rate, startup, projected = estimate_restore(2.0, 100 * mib, 1000 * mib, manifest_run=(0.6, 1 * mib))
    assert rate == pytest.approx(99 / 1.4)
    assert startup == pytest.approx(0.6 - 1 / (99 / 1.4))
    assert projected == pytest.approx(startup + 1000 / (99 / 1.4))
    assert estimate_restore(2.0, 100 * mib, 1000 * mib) == (50.0, 0.0, 20.0)  # one point: all of it is transfer
    assert estimate_restore(0.5, 100 * mib, 1000 * mib, manifest_run=(0.6, 1 * mib))[1] == 0.0  # no usable fit
    assert estimate_restore(1.0, 0, 1000) == (None, None, None)


def test_the_projection_is_the_median_of_recent_drills_with_enough_bytes_and_shows_the_spread():
    from syncer.actions.drill import DEFAULT_SAMPLE_BYTES, project_restore

    mib = 2**20
    dataset = 1000 * mib

    def drill(rate_mib_s, restored=DEFAULT_SAMPLE_BYTES, startup=1.0):
        return {"rate": rate_mib_s * mib, "startup": startup, "bytes": restored, "dataset_bytes": dataset}

    earlier = [drill(100), drill(10), drill(50), drill(2000, restored=2 * mib)]  # the last: too few bytes
    projection = project_restore(drill(20), earlier, dataset)
    # 1 + 1000/rate for the rates 20, 100, 10, 50: 51, 11, 101, 21 -> median 36
    assert projection == {"projected_restore_seconds": 36.0, "projected_restore_range": [11.0, 101.0],
                          "projection_drills": 4, "projection_enough_bytes": True}
    alone = project_restore(drill(2000, restored=2 * mib), [], dataset)
    assert alone["projection_drills"] == 1 and alone["projection_enough_bytes"] is False
    assert alone["projected_restore_range"] == [1.5, 1.5]
    assert project_restore(None, [], dataset)["projected_restore_seconds"] is None


def test_the_default_sample_is_topped_up_to_enough_bytes(tmp_path):
    entries = ManifestStore(tmp_path / "m.sqlite").load({"path": f"f{n}", "size": 10, "mtime_ns": n}
                                                         for n in range(100))
    assert len(choose_sample(entries, ("count", 16), random.Random(1))) == 16
    topped = choose_sample(entries, ("count", 16), random.Random(1), min_bytes=500)
    assert len(topped) == 50 and sum(entries.get(path)["size"] for path in topped) == 500
    assert len(choose_sample(entries, ("count", 16), random.Random(1), min_bytes=10**6)) == 100
