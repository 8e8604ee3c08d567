"""Run records: a run whose process is gone without recording its end is a killed run."""

import json
import subprocess

from syncer.index.db import StateDB
from syncer.index.runs import close_killed, killed_runs


def dead_pid():
    """The PID of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_run_without_an_end_whose_process_is_gone_is_killed(tmp_path):
    db = StateDB(tmp_path)
    running = db.start_run("ds", "push")  # this process: still running
    killed = db.start_run("ds", "push")
    db.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps({"pid": dead_pid()}), killed))
    finished = db.start_run("ds", "check")
    db.finish_run(finished, "ok", 0, {})
    other_action = db.start_run("ds", "verify")
    db.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps({"pid": dead_pid()}), other_action))
    found = killed_runs(db, "ds", ("push", "check"))
    assert [run["id"] for run in found] == [killed]
    assert running != killed
    close_killed(db, found, "killed")
    assert killed_runs(db, "ds", ("push", "check")) == []
    assert db.last_run("ds", "push")["result"] == "interrupted"
