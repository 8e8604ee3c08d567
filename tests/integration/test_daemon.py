"""`syncer daemon` as a subprocess on a short cron (six fields: seconds first) and a
short debounce: scheduled runs, sd_notify, SIGTERM, catching up a missed run, and a
change in a watched dataset leading to a new snapshot."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncer.index.db import StateDB
from tests.integration.page_support import read_page
from tests.support import require_tool, write_policy, write_secret, write_tree

FILES = {"a.txt": "alpha", "dir/b.txt": "beta"}


@pytest.fixture
def site(tmp_path):
    local = write_tree(tmp_path / "local", FILES)
    authority = write_tree(tmp_path / "authority", FILES)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "syncer.yaml").write_text(
        "daemon: {jitter: 0, misfire_grace: 60s, stop_grace: 5s}\n"
        f"metrics: {{textfile: {tmp_path / 'metrics' / 'syncer.prom'}}}\n"
        f"report: {{html: {tmp_path / 'www' / 'status.html'}}}\n")
    return {"tmp": tmp_path, "local": local, "authority": authority, "policies": policies,
            "state": tmp_path / "state"}


def policy(site, name="docs", **extra):
    document = {"path": str(site["local"]), "authority": {"type": "local", "path": str(site["authority"])}}
    document.update(extra)
    write_policy(site["policies"], name, document)


class Daemon:
    def __init__(self, site, env=None):
        self.log = site["tmp"] / f"daemon-{time.monotonic_ns()}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCER_", "NOTIFY_", "WATCHDOG_"))}
        environment.update(env or {})
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syncer", "--policies", str(site["policies"]), "--state-dir",
                 str(site["state"]), "daemon"], stdout=log, stderr=subprocess.STDOUT, env=environment)

    def output(self):
        return self.log.read_text()

    def wait_for_output(self, text, seconds=10):
        return wait_until(lambda: text in self.output(), seconds, f"{text!r} in the daemon's log", self)

    def stop(self):
        """SIGTERM; return (exit code, seconds it took)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        return code, time.monotonic() - started

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def daemons():
    started = []

    def start(site, env=None):
        daemon = Daemon(site, env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def wait_until(condition, seconds, what, daemon=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if daemon is not None and daemon.process.poll() is not None:
            break
        time.sleep(0.1)
    log = daemon.output() if daemon else ""
    raise AssertionError(f"no {what} after {seconds}s\n{log}")


def read_all(receiver, messages):
    receiver.settimeout(1)
    try:
        while True:
            messages.append(receiver.recv(4096))
    except TimeoutError:
        pass


def runs(site, action=None):
    path = site["state"] / "state.db"
    if not path.exists():
        return []
    connection = sqlite3.connect(path, timeout=10)
    try:
        sql = "SELECT dataset, action, started_at, result FROM runs WHERE finished_at IS NOT NULL"
        return connection.execute(sql + (" AND action=?" if action else ""), (action,) if action else ()).fetchall()
    except sqlite3.OperationalError as error:  # the daemon is still creating the schema
        if "no such table" in str(error):
            return []
        raise
    finally:
        connection.close()


def test_scheduled_runs_notify_systemd_and_sigterm_exits_0_promptly(site, daemons, tmp_path):
    policy(site, schedule={"verify": "*/2 * * * * *", "drill": "0 3 * * *"})
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify.sock"))
    receiver.settimeout(10)
    daemon = daemons(site, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"})
    assert receiver.recv(4096).decode().startswith("READY=1")
    assert receiver.recv(4096) == b"WATCHDOG=1"
    messages = []
    reader = threading.Thread(target=read_all, args=(receiver, messages), daemon=True)
    reader.start()
    wait_until(lambda: len(runs(site, "verify")) >= 2, 10, "two scheduled verify runs", daemon)
    code, seconds = daemon.stop()
    assert code == 0, daemon.output()
    assert seconds < 5
    reader.join(5)
    assert messages.count(b"WATCHDOG=1") >= 5  # every 0.2s, half of WATCHDOG_USEC
    assert b"STOPPING=1" in messages  # and no watchdog ping after it
    assert b"WATCHDOG=1" not in messages[messages.index(b"STOPPING=1"):]
    assert b"STATUS=running docs verify" in messages
    assert any(message.startswith(b"STATUS=idle; last: docs verify at ") for message in messages)
    assert "docs drill: next at " in daemon.output()  # scheduled, not run: 03:00 is far away
    assert runs(site, "drill") == []
    assert all(result == "ok" for *_, result in runs(site, "verify"))
    families = {family.name: family for family in
                text_string_to_metric_families((tmp_path / "metrics" / "syncer.prom").read_text())}
    [ok] = [s for s in families["syncer_last_run_result"].samples
            if s.labels == {"dataset": "docs", "action": "verify", "result": "ok"}]
    assert ok.value == 1
    # the status page is rewritten after every step, like the textfile
    [verify, *_] = read_page((tmp_path / "www" / "status.html").read_text()).tables_of("history")
    assert len(verify.rows) >= 2 and {row[1] for row in verify.rows} == {"0"}


def test_a_run_missed_while_stopped_is_caught_up_after_restart(site, daemons):
    policy(site, schedule={"verify": "*/2 * * * * *"})
    daemon = daemons(site)
    wait_until(lambda: runs(site, "verify"), 10, "a first verify run", daemon)
    assert daemon.stop()[0] == 0
    # The board is off across the next scheduled times: a daily 03:00 schedule last
    # run two days ago.
    policy(site, schedule={"verify": "0 3 * * *"})
    with sqlite3.connect(site["state"] / "state.db") as connection:
        connection.execute("UPDATE runs SET started_at=started_at-172800, finished_at=finished_at-172800")
    before = len(runs(site, "verify"))
    restarted = daemons(site)
    restarted.wait_for_output("docs verify: missed its run at")
    wait_until(lambda: len(runs(site, "verify")) > before, 10, "the caught-up verify run", restarted)
    assert restarted.stop()[0] == 0


def test_every_run_said_to_be_missed_runs_even_behind_busy_workers(site, daemons):
    """At start the daemon says "missed its run ... running it now" for each dataset;
    each then runs, though two workers are busy with the others for longer than the
    misfire grace time (1s here; hours when a verify of a big dataset is running)."""
    (site["policies"] / "syncer.yaml").write_text("daemon: {misfire_grace: 1s, stop_grace: 10s}\n")  # default jitter
    names = ("docs", "mail", "photos")
    for name in names:
        data = write_tree(site["tmp"] / name, FILES)
        write_policy(site["policies"], name, {"path": str(data), "authority": {"type": "local", "path": str(data)},
                                              "schedule": {"verify": "0 3 * * *"},
                                              "hooks": {"before_verify": ["sleep 3"]}})
    db = StateDB(site["state"])  # each last ran two days ago: the board was off since
    for name in names:
        db.finish_run(db.start_run(name, "verify"), "ok", 0, {})
    db.execute("UPDATE runs SET started_at=started_at-172800, finished_at=finished_at-172800")
    db.close()
    daemon = daemons(site)
    for name in names:
        daemon.wait_for_output(f"{name} verify: missed its run at")
    wait_until(lambda: {run[0] for run in runs(site, "verify") if run[2] > time.time() - 3600} == set(names), 40,
               "a verify of every dataset after the start", daemon)
    assert "was missed by" not in daemon.output()
    assert daemon.stop()[0] == 0


def test_nothing_to_catch_up_when_the_last_run_is_recent(site, daemons):
    policy(site, schedule={"verify": "0 3 * * *"})
    daemon = daemons(site)
    daemon.wait_for_output("daemon started")
    time.sleep(3)  # longer than the catch-up delay
    assert runs(site, "verify") == []  # never ran: nothing was missed (as with a timer's first start)
    assert "missed its run" not in daemon.output()
    assert daemon.stop()[0] == 0


def test_a_dataset_added_while_the_daemon_runs_is_scheduled_on_sighup_or_by_itself(site, daemons):
    policy(site, schedule={"drill": "0 3 * * *"})
    daemon = daemons(site)
    daemon.wait_for_output("daemon started")
    mail = write_tree(site["tmp"] / "mail", FILES)
    write_policy(site["policies"], "mail", {"path": str(mail), "authority": {"type": "local", "path": str(mail)},
                                            "schedule": {"verify": "*/2 * * * * *"}})
    daemon.process.send_signal(signal.SIGHUP)  # what `systemctl reload syncer-daemon` sends
    daemon.wait_for_output("policies applied (SIGHUP): 2 dataset(s), added mail")
    wait_until(lambda: [run for run in runs(site, "verify") if run[0] == "mail"], 10, "a verify of mail", daemon)
    (site["policies"] / "mail.yaml").unlink()  # no signal: the daemon sees the directory change
    daemon.wait_for_output("changed): 1 dataset(s), removed mail", seconds=15)
    assert daemon.process.poll() is None
    assert daemon.stop()[0] == 0


def test_a_change_in_a_watched_dataset_leads_to_a_new_snapshot(site, daemons, tmp_path):
    restic = require_tool("restic")
    password = write_secret(tmp_path / "secrets" / "restic.pass", "daemon-test-password\n")
    policy(site, watch=True, watch_debounce="1s",
           offsite={"repository": str(tmp_path / "repo"), "password_file": str(password),
                    "manifest_root": str(tmp_path / "manifest-root")})
    daemon = daemons(site)
    daemon.wait_for_output("docs: watching")
    (site["local"] / "dir" / "new.txt").write_text("written while the daemon watches")
    changed_at = time.monotonic()
    wait_until(lambda: [r for r in runs(site, "push") if r[3] == "ok"], 30, "a push after the change", daemon)
    assert time.monotonic() - changed_at >= 1.0  # not before the debounce
    assert "docs: 1 path(s) changed and then quiet" in daemon.output()
    assert "1 file hashed" in daemon.output()  # only the changed file was re-indexed
    listing = subprocess.run([restic, "-r", str(tmp_path / "repo"), "--password-file", str(password), "--no-cache",
                              "ls", "latest"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert any(line.endswith("/dir/new.txt") for line in listing.stdout.splitlines())
    assert "daemon-test-password" not in daemon.output()
    assert daemon.stop()[0] == 0


def test_sigterm_during_a_long_step_abandons_it_after_the_grace_and_exits_0(site, daemons):
    (site["policies"] / "syncer.yaml").write_text("daemon: {jitter: 0, stop_grace: 1s}\n")
    policy(site, schedule={"verify": "*/2 * * * * *"}, hooks={"before_verify": ["sleep 6"]})
    daemon = daemons(site)
    daemon.wait_for_output("docs verify: starting")
    code, seconds = daemon.stop()
    assert code == 0, daemon.output()
    assert seconds < 4  # the grace (1s) and a margin, not the step's 6s
    assert "docs verify: abandoned (still running after 1s)" in daemon.output()


STAND_IN_RESTIC = '''#!{python}
"""A restic that never ends: it marks itself running, and on SIGINT or SIGTERM takes
half a second to clean up (as restic removes its lock) before it exits."""
import os, signal, sys, time
if sys.argv[1:2] == ["version"]:
    print("restic 0.14.0 compiled with go1.19.8 on linux/amd64")
    sys.exit(0)
marker = sys.argv[0] + ".running"
with open(marker, "w") as out:
    out.write(str(os.getpid()))
def stop(number, frame):
    time.sleep(0.5)
    os.unlink(marker)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
time.sleep(120)
'''


def test_sigterm_outside_systemd_stops_the_restic_of_an_abandoned_step_before_exiting(site, daemons):
    restic = site["tmp"] / "bin" / "restic"
    restic.parent.mkdir()
    restic.write_text(STAND_IN_RESTIC.format(python=sys.executable))
    restic.chmod(0o755)
    password = write_secret(site["tmp"] / "restic.pass", "pw\n")
    (site["policies"] / "syncer.yaml").write_text(f"daemon: {{jitter: 0, stop_grace: 1s}}\nrestic: {restic}\n")
    policy(site, schedule={"push": "*/2 * * * * *"},
           offsite={"repository": str(site["tmp"] / "repo"), "password_file": str(password),
                    "manifest_root": str(site["tmp"] / "manifest-root")})
    daemon = daemons(site)
    marker = restic.parent / "restic.running"
    wait_until(marker.exists, 30, "the push running restic", daemon)
    pid = int(marker.read_text())
    code, _ = daemon.stop()
    assert code == 0, daemon.output()
    assert not marker.exists(), "the daemon exited before its restic child had stopped"
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1][:3]
    assert "stopped 1 program(s) the abandoned steps were running" in daemon.output()
