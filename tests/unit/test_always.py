"""The pure parts of the always-on mode: cron and durations, notification rules, the
metrics textfile, missed-run detection, staleness, the watcher's fallback, and the
dirty-path index refresh that keeps k changes at O(k)."""

import errno
import logging
import os
import time
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncer.actions.status import run_status
from syncer.errors import PolicyError, exit_code_of
from syncer.index.db import LOCAL, StateDB
from syncer.index.dirty import count_dirty, mark_changed, refresh_paths
from syncer.index.scan import scan_tree
from syncer.notify.events import classify, should_notify
from syncer.notify.textfile import render_metrics, write_textfile
from syncer.policy import load_policies
from syncer.policy.load import load_global_settings
from syncer.policy.settings import cron_interval, cron_trigger, parse_duration
from syncer.schedule.daemon import bounded_jitter, missed_run
from syncer.schedule.watch import PendingChanges, Watcher
from tests.support import write_policy, write_tree


def utc(*fields):
    return datetime(*fields, tzinfo=UTC)


def test_cron_weekday_numbers_mean_what_cron_means():
    monday = utc(2026, 11, 23)
    for expression, expected_day in (("0 3 * * 0", 29), ("0 3 * * 7", 29), ("0 3 * * 1", 30), ("0 3 * * 2", 24),
                                     ("0 3 * * 1-5", 24)):
        trigger = cron_trigger(expression, timezone=UTC)
        assert trigger.get_next_fire_time(None, utc(2026, 11, 23, 12)).day == expected_day, expression
    assert cron_trigger("0 3 * * */2", timezone=UTC).get_next_fire_time(None, monday).weekday() in (0, 2, 4, 6)


def test_six_fields_put_seconds_first():
    trigger = cron_trigger("*/5 * * * * *", timezone=UTC)
    assert trigger.get_next_fire_time(None, utc(2026, 1, 1, 0, 0, 1)) == utc(2026, 1, 1, 0, 0, 5)
    with pytest.raises(ValueError):
        cron_trigger("* * * *")
    with pytest.raises(ValueError):
        cron_trigger("0 3 * * 8")


def test_cron_interval_is_the_longest_gap():
    assert cron_interval("0 * * * *") == 3600
    assert cron_interval("30 3 * * 1-5") == 3 * 86400  # Friday to Monday
    assert cron_interval("*/2 * * * * *") == 2


def test_durations():
    assert parse_duration("10m") == 600 and parse_duration(90) == 90 and parse_duration("1.5h") == 5400
    assert parse_duration("250ms") == 0.25
    for bad in ("soon", "-1s", True, "10 minutes"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_only_failures_and_recoveries_notify_by_default():
    assert classify(None, "ok") == "success"
    assert classify("ok", "failed") == "failure"
    assert classify("failed", "findings") == "failure"
    assert classify("findings", "ok") == "recovery"
    assert classify("interrupted", "ok") == "recovery"
    assert [should_notify(event, "failures") for event in ("success", "failure", "recovery")] == [False, True, True]
    assert should_notify("success", "all")


def test_a_missed_run_is_the_schedule_time_after_the_last_start():
    last = utc(2026, 11, 20, 3, 0, 5).timestamp()
    assert missed_run("0 3 * * *", last, utc(2026, 11, 20, 12).timestamp()) is None
    missed = missed_run("0 3 * * *", last, utc(2026, 11, 22, 12).timestamp())
    assert missed.astimezone(UTC) == utc(2026, 11, 21, 3)
    assert missed_run("0 3 * * *", None, time.time()) is None


def test_the_jitter_is_at_most_a_tenth_of_the_shortest_gap_of_the_schedule(tmp_path):
    assert bounded_jitter("0 3 * * *", 60) == 60  # daily: the default 60s stands
    assert bounded_jitter("0 3 * * 1-5", 2 * 3600) == 2 * 3600  # weekdays: the shortest gap is a day, not 3
    assert bounded_jitter("*/5 * * * *", 60) == 30
    assert bounded_jitter("*/10 * * * * *", 60) == 1  # not a 60s blur on a 10s schedule
    assert bounded_jitter("*/10 * * * * *", 0) is None
    (tmp_path / "data").mkdir()
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "data")},
                                          "schedule": {"verify": "*/2 * * * *", "push": "0 4 * * *"}})
    from syncer.policy.model import GlobalSettings
    from syncer.schedule.daemon import Daemon

    daemon = Daemon(load_policies(tmp_path / "p"), tmp_path / "state", GlobalSettings())  # the default jitter
    daemon.plan_jobs()
    assert {job.id: job.trigger.jitter for job in daemon.scheduler.get_jobs()} == {"docs:verify": 12,
                                                                                    "docs:push": 60}
    daemon.db.close()


def test_the_textfile_parses_and_is_written_atomically(tmp_path):
    report = {"datasets": [{
        "name": 'we"ird\\name', "files": 3, "bytes": 300, "checksum_coverage": 0.5, "findings": {"changed": 2},
        "last": {"push": {"at": 1000.0, "result": "ok", "seconds": 2.5, "last_success_at": 1000.0}},
        "schedule": {"push": "0 3 * * *"}, "stale": ["push"], "newest_snapshot": {"at": 1000.0},
        "drill": {"throughput_mib_s": 2.0, "projected_restore_seconds": 30.0}}]}
    text = render_metrics(report, now=1600.0)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    name = ("dataset", 'we"ird\\name')
    assert samples[("syncer_newest_snapshot_age_seconds", (name,))] == 600
    assert samples[("syncer_drill_throughput_bytes_per_second", (name,))] == 2 * 2**20
    assert samples[("syncer_stale", (("action", "push"), name))] == 1
    assert samples[("syncer_findings", (("category", "changed"), name))] == 2
    assert samples[("syncer_last_run_result", (("action", "push"), name, ("result", "failed")))] == 0
    target = tmp_path / "textfile" / "syncer.prom"
    write_textfile(target, text)
    write_textfile(target, text)
    assert target.read_text() == text and os.listdir(target.parent) == ["syncer.prom"]
    assert target.stat().st_mode & 0o777 == 0o644


class ExhaustedObserver:
    """An observer whose kernel has no inotify watches left."""

    def start(self):
        pass

    def schedule(self, *arguments, **options):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def stop(self):
        pass

    def join(self, timeout=None):
        pass


def test_running_out_of_inotify_watches_falls_back_and_says_so(tmp_path, caplog):
    watcher = Watcher(PendingChanges(), observer_factory=ExhaustedObserver)
    with caplog.at_level(logging.WARNING, logger="syncer.watch"):
        assert watcher.watch("photos", tmp_path) is False
    assert watcher.fallen_back == ["photos"] and watcher.watching == []
    [message] = [record.getMessage() for record in caplog.records]
    assert "inotify watches ran out" in message and "falling back to scheduled scans" in message
    assert "max_user_watches" in message


def test_pending_changes_wait_for_quiet():
    changes = PendingChanges()
    changes.add("docs", ["a", "b"])
    assert changes.take_unmarked() == {"docs": {"a", "b"}} and changes.take_unmarked() == {}
    assert changes.take_quiet(lambda name: 60) == {}
    assert changes.take_quiet(lambda name: 0) == {"docs": {"a", "b"}}
    assert changes.take_quiet(lambda name: 0) == {}


@pytest.fixture
def indexed(tmp_path):
    files = {f"d{n % 10}/f{n}.txt": f"content {n}" for n in range(300)}
    root = write_tree(tmp_path / "data", files)
    db = StateDB(tmp_path / "state")
    scan_tree(db, "docs", LOCAL, root, (), ("sha256",))
    yield db, root
    db.close()


def index_rows(db):
    return db.execute("SELECT path, size, sha256, dirty FROM files WHERE dataset='docs' AND side='local' "
                      "ORDER BY path").fetchall()


def test_k_changes_cost_k_files_and_match_a_full_scan(indexed, tmp_path):
    db, root = indexed
    (root / "d1/f1.txt").write_text("changed")
    (root / "d2/f2.txt").unlink()
    write_tree(root, {"new/deep/g.txt": "new", "d3/h.txt": "added"})
    changed = ["d1/f1.txt", "d2/f2.txt", "new", "d3/h.txt"]
    mark_changed(db, "docs", changed)
    assert count_dirty(db, "docs") == 2  # the two that had rows; new files need no mark
    stats = refresh_paths(db, "docs", root, changed)
    assert (stats.files, stats.hashed, stats.removed) == (3, 3, 1)  # k, not 300
    assert count_dirty(db, "docs") == 0
    fresh = StateDB(tmp_path / "fresh")
    scan_tree(fresh, "docs", LOCAL, root, (), ("sha256",))
    assert index_rows(db) == index_rows(fresh)
    assert scan_tree(db, "docs", LOCAL, root, (), ("sha256",)).hashed == 0  # nothing left for verify


def test_a_dirty_file_is_rehashed_even_when_its_stat_looks_unchanged(indexed):
    db, root = indexed
    mark_changed(db, "docs", ["d4"])  # a directory: every row below it
    assert count_dirty(db, "docs") == 30
    assert scan_tree(db, "docs", LOCAL, root, (), ("sha256",)).hashed == 30
    assert count_dirty(db, "docs") == 0


def test_a_removed_directory_drops_its_rows(indexed):
    db, root = indexed
    for path in (root / "d5").iterdir():
        path.unlink()
    (root / "d5").rmdir()
    stats = refresh_paths(db, "docs", root, ["d5"])
    assert stats.removed == 30
    assert not [row for row in index_rows(db) if row[0].startswith("d5/")]
    assert [row for row in index_rows(db) if row[0].startswith("d50")] == []


def write_status_policy(tmp_path, schedule):
    (tmp_path / "data").mkdir(exist_ok=True)
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "data")},
                                          "schedule": schedule})
    return load_policies(tmp_path / "p")


def record(db, action, result, finished_at, **summary):
    run_id = db.start_run("docs", action)
    db.finish_run(run_id, result, {"ok": 0, "findings": 1}.get(result, 3), summary)
    db.execute("UPDATE runs SET started_at=?, finished_at=? WHERE id=?", (finished_at - 10, finished_at, run_id))


def test_status_flags_an_action_without_a_completed_run_in_twice_its_interval(tmp_path):
    policies = write_status_policy(tmp_path, {"verify": "0 * * * *", "push": "0 3 * * *"})
    db = StateDB(tmp_path / "state")
    now = time.time()
    record(db, "verify", "ok", now - 3 * 3600)
    record(db, "verify", "failed", now - 600)  # a failure is not a completed run
    record(db, "push", "ok", now - 3600, snapshot="abc123")
    record(db, "drill", "ok", now - 100, throughput_mib_s=10.0, projected_restore_seconds=42.0)
    [row] = run_status(policies, db, now=now)["datasets"]
    assert row["stale"] == ["verify"] and exit_code_of([row]) == 1
    assert row["last"]["verify"]["result"] == "failed"
    assert row["last"]["verify"]["last_success_at"] == pytest.approx(now - 3 * 3600)
    assert row["newest_snapshot"]["id"] == "abc123" and row["rpo_seconds"] == 3600
    assert row["projected_restore_seconds"] == 42.0
    record(db, "verify", "ok", now - 60)
    [row] = run_status(policies, db, now=now)["datasets"]
    assert row["stale"] == [] and exit_code_of([row]) == 0


def test_status_counts_a_failed_last_run_as_a_finding(tmp_path):
    policies = write_status_policy(tmp_path, {})
    db = StateDB(tmp_path / "state")
    now = time.time()
    record(db, "verify", "ok", now - 60)
    assert exit_code_of(run_status(policies, db, now=now)["datasets"]) == 0
    for action, result in (("push", "failed"), ("drill", "findings")):
        record(db, action, result, now - 30)
        assert exit_code_of(run_status(policies, db, now=now)["datasets"]) == 1, (action, result)
        record(db, action, "ok", now - 10)  # the next run succeeded: healthy again
        assert exit_code_of(run_status(policies, db, now=now)["datasets"]) == 0, action


def test_restic_over_half_the_memory_is_a_finding_in_status_until_it_stays_under(tmp_path, capsys):
    from syncer.actions.common import watch_restic_memory
    from syncer.cli.render import render_status
    from syncer.index.runs import runs_since

    policies = write_status_policy(tmp_path, {})
    db = StateDB(tmp_path / "state")
    now = time.time()
    record(db, "push", "ok", now - 60, restic_peak_rss_bytes=300 * 2**20)
    record(db, "drill", "ok", now - 50, restic_peak_rss_bytes=700 * 2**20)
    watch_restic_memory(db, "docs", "push", 300 * 2**20, machine_bytes=1024 * 2**20)
    [row] = run_status(policies, db)["datasets"]
    assert row["restic_peak_rss"] == {"bytes": 700 * 2**20, "action": "drill", "over_half_of_memory": False}
    assert exit_code_of([row]) == 0 and not runs_since(db, "docs", now - 3600)[2:]  # under half: nothing recorded
    started = time.time()
    watch_restic_memory(db, "docs", "drill", 700 * 2**20, machine_bytes=1024 * 2**20)
    [warning] = runs_since(db, "docs", started)
    assert warning["action"] == "restic-memory" and warning["result"] == "findings"  # an unattended step notifies
    assert "restic used 700 MiB during drill, over half of this machine's 1024 MiB" in warning["summary"]["error"]
    [row] = run_status(policies, db)["datasets"]
    assert row["findings"] == {"restic_memory": 1} and row["restic_peak_rss"]["over_half_of_memory"]
    assert exit_code_of([row]) == 1
    render_status({"datasets": [row]})
    assert "restic: peak memory 700 MiB (drill), over half of this machine's memory" in capsys.readouterr().out
    watch_restic_memory(db, "docs", "push", 100 * 2**20, machine_bytes=1024 * 2**20)  # another action: still warned
    assert run_status(policies, db)["datasets"][0]["findings"] == {"restic_memory": 1}
    watch_restic_memory(db, "docs", "drill", 200 * 2**20, machine_bytes=1024 * 2**20)  # the drill is under now
    [row] = run_status(policies, db)["datasets"]
    assert row["findings"] == {} and exit_code_of([row]) == 0


def test_syncer_yaml_is_not_a_dataset_and_its_problems_name_it(tmp_path):
    (tmp_path / "data").mkdir()
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "data")},
                                          "watch": True, "watch_debounce": "30s",
                                          "notify": {"webhook": "https://example.invalid/hook"}})
    (tmp_path / "p" / "syncer.yaml").write_text("daemon: {jitter: 5s}\n")
    assert [policy.name for policy in load_policies(tmp_path / "p")] == ["docs"]
    assert load_global_settings(tmp_path / "p").jitter == 5
    (tmp_path / "p" / "syncer.yaml").write_text("daemon: {jitter: often}\n")
    with pytest.raises(PolicyError) as caught:
        load_global_settings(tmp_path / "p")
    assert caught.value.problems == ["syncer.yaml: daemon.jitter: 'often' is not a duration (seconds, or like "
                                     "30s, 10m, 2h)"]


def test_policy_always_on_keys_are_validated(tmp_path):
    (tmp_path / "data").mkdir()
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "data")},
                                          "watch": "yes", "watch_debounce": "soon",
                                          "notify": {"ntfy": "topic", "events": "some"},
                                          "schedule": {"verify": "0 3 * * 9"}})
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path / "p")
    problems = caught.value.problems
    assert "docs.yaml: watch: must be true or false, not a string" in problems
    assert "docs.yaml: watch_debounce: 'soon' is not a duration (seconds, or like 30s, 10m, 2h)" in problems
    assert "docs.yaml: notify.ntfy: must be an http:// or https:// URL" in problems
    assert "docs.yaml: notify.events: must be one of failures, all" in problems
    assert any(p.startswith("docs.yaml: schedule.verify: '0 3 * * 9' is not a valid cron") for p in problems)


def test_check_policies_reports_syncer_yaml_problems_with_the_others(tmp_path):
    (tmp_path / "data").mkdir()
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"), "pth": "x",
                                          "authority": {"type": "local", "path": str(tmp_path / "data")}})
    (tmp_path / "p" / "syncer.yaml").write_text("metrics: {textfile: [1]}\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path / "p")
    assert "syncer.yaml: metrics.textfile: must be a string, not a list" in caught.value.problems
    assert any(problem.startswith("docs.yaml: pth: unknown key") for problem in caught.value.problems)


def test_the_daemon_plans_a_job_for_every_dataset_and_every_action_a_schedule_may_name(tmp_path, caplog):
    from syncer.policy.model import SCHEDULED_ACTIONS, GlobalSettings
    from syncer.schedule.daemon import Daemon

    for name in ("docs", "photos"):
        (tmp_path / name).mkdir()
        write_policy(tmp_path / "p", name, {"path": str(tmp_path / name),
                                            "authority": {"type": "local", "path": str(tmp_path / name)},
                                            "schedule": {action: "0 4 * * *" for action in SCHEDULED_ACTIONS}})
    daemon = Daemon(load_policies(tmp_path / "p"), tmp_path / "state", GlobalSettings(daemon={"jitter": 0}))
    with caplog.at_level(logging.WARNING, logger="syncer.daemon"):
        assert daemon.plan_jobs() == 2 * len(SCHEDULED_ACTIONS)
    assert {job.id for job in daemon.scheduler.get_jobs()} == {
        f"{name}:{action}" for name in ("docs", "photos") for action in SCHEDULED_ACTIONS}
    assert caplog.records == []
    daemon.db.close()


def test_a_watch_that_dies_later_falls_back_and_says_so(tmp_path, caplog):
    (tmp_path / "photos").mkdir()
    watcher = Watcher(PendingChanges())
    try:
        assert watcher.watch("photos", tmp_path / "photos")
        assert watcher.check() == []
        [emitter] = watcher.observer.emitters
        emitter.stop()
        emitter.join(5)
        with caplog.at_level(logging.WARNING, logger="syncer.watch"):
            assert watcher.check() == ["photos"]
        assert "watching" in caplog.text and "falling back to scheduled scans" in caplog.text
        assert watcher.check() == []  # said once
    finally:
        watcher.stop()


def test_a_watched_datasets_verify_examines_only_what_the_watch_saw_until_it_lost_track(tmp_path):
    from syncer.policy.model import GlobalSettings
    from syncer.schedule.daemon import FULL_WALK_SECONDS, Daemon
    from syncer.schedule.watch import OverflowListener

    write_tree(tmp_path / "data", {"a.txt": "a", "b.txt": "b", "c/d.txt": "d"})
    write_tree(tmp_path / "authority", {"a.txt": "a", "b.txt": "b", "c/d.txt": "d"})
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"), "watch": True,
                                          "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    [policy] = load_policies(tmp_path / "p")
    daemon = Daemon([policy], tmp_path / "state", GlobalSettings())
    daemon.watcher = type("Watching", (), {"watching": ["docs"], "authority_roots": {}})()
    daemon.watch_started["docs"] = time.time() - 60
    try:
        def verify(now=None):
            [result] = daemon.verify_watched(policy, daemon.db, now)
            changed = sorted(item["path"] for item in result["items"] if item["status"] == "changed")
            return result["local"]["examined"], result["local"]["files"], changed

        assert verify() == ("tree", 3, [])  # no walk since the watch began: walk
        (tmp_path / "data" / "a.txt").write_text("A")
        (tmp_path / "data" / "b.txt").write_text("B")  # a change the watch did not report
        daemon.changes.add("docs", ["a.txt"])
        assert verify() == ("changes", 1, ["a.txt"])  # one path examined, not the tree
        assert verify() == ("changes", 0, ["a.txt"])
        listener, watchdog_log = OverflowListener(daemon.changes), logging.getLogger("watchdog.observers.inotify_c")
        watchdog_log.addHandler(listener)
        try:
            watchdog_log.warning("Inotify queue overflowed; filesystem events were lost")  # what watchdog says
        finally:
            watchdog_log.removeHandler(listener)
        assert verify() == ("tree", 3, ["a.txt", "b.txt"])  # lost events: walk, and b.txt is found
        assert verify()[0] == "changes"
        assert verify(now=time.time() + FULL_WALK_SECONDS)[0] == "tree"  # the daily safety net
        daemon.watcher.watching = []  # the watch stopped
        assert verify()[0] == "tree"
    finally:
        daemon.db.close()


def test_changes_past_the_tracking_limit_make_the_next_verify_walk(monkeypatch):
    from syncer.schedule import watch

    monkeypatch.setattr(watch, "MAX_TRACKED_CHANGES", 3)
    changes = PendingChanges()
    changes.add("docs", ["a", "b"])
    assert changes.take_for_verify("docs") == {"a", "b"}
    assert changes.take_for_verify("docs") == set()
    changes.add("docs", ["a", "b", "c", "d"])
    assert changes.take_for_verify("docs") is None
    changes.add("docs", ["e"])
    changes.lose_track("docs")
    assert changes.take_for_verify("docs") is None and changes.take_for_verify("docs") == set()


def watched_local_authority(tmp_path, files):
    """A watched dataset `docs` of `files` whose authority is a copy in a local directory,
    and a daemon for it: (policy, daemon)."""
    from syncer.policy.model import GlobalSettings
    from syncer.schedule.daemon import Daemon

    write_tree(tmp_path / "data", files)
    write_tree(tmp_path / "authority", files)
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"), "watch": True,
                                          "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    [policy] = load_policies(tmp_path / "p")
    return policy, Daemon([policy], tmp_path / "state", GlobalSettings())


def test_a_local_authority_is_watched_too_and_its_changes_are_all_its_verify_compares(tmp_path):
    from syncer.index.db import AUTHORITY
    from syncer.schedule.daemon import FULL_WALK_SECONDS

    policy, daemon = watched_local_authority(tmp_path, {f"d{n}/f{m}.txt": f"{n} {m}" for n in range(5)
                                                        for m in range(4)})
    daemon.watcher = type("Watching", (), {"watching": ["docs"], "authority_roots": {"docs": "authority"}})()
    daemon.watch_started["docs"] = time.time() - 60
    try:
        def verify(now=None):
            [result] = daemon.verify_watched(policy, daemon.db, now)
            changed = sorted(item["path"] for item in result["items"] if item["status"] == "changed")
            return result["local"]["examined"], result.get("compared"), changed

        assert verify() == ("tree", None, [])
        (tmp_path / "authority" / "d1" / "f1.txt").write_text("upstream edit")
        daemon.changes.add("docs", ["d1/f1.txt"], AUTHORITY)
        assert daemon.changes.take_unmarked() == {}  # an authority's change is neither marked dirty nor pushed
        assert verify() == ("changes", 1, ["d1/f1.txt"])  # one row judged, not 20
        assert verify() == ("changes", 0, ["d1/f1.txt"])  # carried over
        daemon.changes.lose_track("docs")  # an overflow of either watch
        assert verify() == ("tree", None, ["d1/f1.txt"])
        assert verify()[:2] == ("changes", 0)
        assert verify(now=time.time() + FULL_WALK_SECONDS)[:2] == ("tree", None)  # the daily safety net
        del daemon.watcher.authority_roots["docs"]  # the authority's watch stopped: its changes are unknown
        assert verify()[:2] == ("changes", None)  # the local copy's changes only; everything compared
    finally:
        daemon.db.close()


def test_the_watcher_collects_an_authoritys_changes_apart_and_a_lost_authority_watch_loses_track(tmp_path):
    from syncer.index.db import AUTHORITY

    (tmp_path / "data").mkdir()
    (tmp_path / "authority").mkdir()
    changes = PendingChanges()
    watcher = Watcher(changes)
    try:
        assert watcher.watch("docs", tmp_path / "data")
        assert watcher.watch("docs", tmp_path / "authority", side=AUTHORITY)
        (tmp_path / "authority" / "x.txt").write_text("x")
        deadline = time.monotonic() + 10
        while not changes.since_verify.get(("docs", AUTHORITY)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert changes.take_for_verify("docs", AUTHORITY) == {"x.txt"}
        assert changes.take_unmarked() == {} and changes.take_for_verify("docs") == set()
        [authority_emitter] = [emitter for emitter in watcher.observer.emitters
                               if emitter.watch.path == str(tmp_path / "authority")]
        authority_emitter.stop()
        authority_emitter.join(5)
        assert watcher.check() == ["docs"]
        assert watcher.watching == ["docs"] and watcher.authority_roots == {}  # pushes still follow the local watch
        assert changes.take_for_verify("docs", AUTHORITY) is None and changes.take_for_verify("docs") is None
    finally:
        watcher.stop()


def test_the_daemon_watches_a_local_authority_and_its_next_verify_compares_just_what_changed_there(tmp_path):

    policy, daemon = watched_local_authority(tmp_path, {f"d{n}/f.txt": str(n) for n in range(10)})
    try:
        daemon.plan_watches()
        assert daemon.watcher.authority_roots == {"docs": str(tmp_path / "authority")}
        [walked] = daemon.verify_watched(policy, daemon.db)
        assert walked["local"]["examined"] == "tree" and "compared" not in walked
        (tmp_path / "authority" / "d3" / "f.txt").write_text("changed upstream")
        deadline = time.monotonic() + 10
        while not daemon.changes.since_verify.get(("docs", "authority")) and time.monotonic() < deadline:
            time.sleep(0.05)
        [result] = daemon.verify_watched(policy, daemon.db)
        assert result["local"]["examined"] == "changes" and result["compared"] == 1
        assert [(item["path"], item["status"]) for item in result["items"]] == [("d3/f.txt", "changed")]
        assert result["counts"]["ok"] == 9
    finally:
        if daemon.watcher:
            daemon.watcher.stop()
        daemon.db.close()


def edited_policies_daemon(tmp_path):
    """A daemon of two datasets, docs and photos, reading tmp_path/p again when it
    changes; its schedules planned, not started."""
    from syncer.policy.model import GlobalSettings
    from syncer.schedule.daemon import Daemon

    for name in ("docs", "photos"):
        (tmp_path / name).mkdir()
        write_policy(tmp_path / "p", name, {"path": str(tmp_path / name), "schedule": {"verify": "0 4 * * *"},
                                            "authority": {"type": "local", "path": str(tmp_path / name)}})
    daemon = Daemon(load_policies(tmp_path / "p"), tmp_path / "state", GlobalSettings(daemon={"jitter": 0}),
                    tmp_path / "p")
    daemon.plan_jobs()
    return daemon


def check_now(daemon):
    daemon.next_policy_check = 0
    return daemon.check_policies()


def job_ids(daemon):
    return {job.id for job in daemon.scheduler.get_jobs()}


def test_the_daemon_applies_an_edited_policies_directory_without_a_restart(tmp_path, caplog):
    daemon = edited_policies_daemon(tmp_path)
    try:
        assert check_now(daemon) is False  # nothing changed: nothing read again
        (tmp_path / "p" / ".#docs.yaml").symlink_to("anna@board.1234")  # Emacs's lock while editing
        assert check_now(daemon) is False
        (tmp_path / "music").mkdir()
        write_policy(tmp_path / "p", "music", {"path": str(tmp_path / "music"), "schedule": {"push": "0 5 * * *"},
                                               "authority": {"type": "local", "path": str(tmp_path / "music")}})
        (tmp_path / "p" / "photos.yaml").unlink()
        with caplog.at_level(logging.INFO, logger="syncer.daemon"):
            assert check_now(daemon) is True
        assert job_ids(daemon) == {"docs:verify", "music:push"}
        assert set(daemon.policies) == {"docs", "music"}
        assert "added music, removed photos" in caplog.text
        daemon.run_step("photos", "verify")  # a job of the removed dataset that was already due
        assert daemon.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        # an edit of a schedule is applied too; syncer.yaml's settings with it
        write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "docs"), "schedule": {"drill": "0 6 * * *"},
                                              "authority": {"type": "local", "path": str(tmp_path / "docs")}})
        (tmp_path / "p" / "syncer.yaml").write_text("daemon: {jitter: 0, stop_grace: 7s}\n")
        assert check_now(daemon) is True
        assert job_ids(daemon) == {"docs:drill", "music:push"}
        assert daemon.settings.stop_grace == 7
    finally:
        daemon.db.close()


def test_an_edit_with_a_problem_changes_nothing_and_is_said(tmp_path, caplog):
    daemon = edited_policies_daemon(tmp_path)
    try:
        (tmp_path / "p" / "photos.yaml").write_text("path: [unclosed\n")  # an editor's half-written save
        with caplog.at_level(logging.ERROR, logger="syncer.daemon"):
            assert check_now(daemon) is False
        assert job_ids(daemon) == {"docs:verify", "photos:verify"}  # photos is not dropped from the schedule
        assert set(daemon.policies) == {"docs", "photos"}
        assert "policies not applied" in caplog.text and "photos.yaml" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="syncer.daemon"):
            assert check_now(daemon) is False  # said once, not at every check
        assert caplog.text == ""
        daemon.reload_asked.set()  # SIGHUP reads again even when nothing changed since
        assert check_now(daemon) is False and "photos.yaml" in caplog.text
        write_policy(tmp_path / "p", "photos", {"path": str(tmp_path / "photos"),
                                                "authority": {"type": "local", "path": str(tmp_path / "photos")}})
        assert check_now(daemon) is True
        assert job_ids(daemon) == {"docs:verify"}
    finally:
        daemon.db.close()


def test_a_daemon_given_its_policies_only_never_reads_them_again(tmp_path):
    from syncer.policy.model import GlobalSettings
    from syncer.schedule.daemon import Daemon

    (tmp_path / "docs").mkdir()
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "docs"),
                                          "authority": {"type": "local", "path": str(tmp_path / "docs")}})
    daemon = Daemon(load_policies(tmp_path / "p"), tmp_path / "state", GlobalSettings())
    try:
        (tmp_path / "p" / "docs.yaml").unlink()
        daemon.reload_asked.set()
        assert check_now(daemon) is False and set(daemon.policies) == {"docs"}
    finally:
        daemon.db.close()
