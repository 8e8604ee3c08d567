"""Helpers of the fault-injection suite: start syncer in its own process group and
kill it, check the invariants that must hold after every fault, and record the
figures (fault, times injected, recovered without help, bytes lost)."""

import functools
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO, Result, group_members, restic_setting, restic_under_test

RESULTS = Path(os.environ.get("SYNCER_FAULTS_RESULTS", REPO / ".faults" / "results.jsonl"))
SEED = int(os.environ.get("SYNCER_FAULTS_SEED", "20261124"))


def syncer_command(arguments, policies=None, state=None):
    command = [sys.executable, "-m", "syncer"]
    if policies is not None:
        command += ["--policies", str(policies)]
    if state is not None:
        command += ["--state-dir", str(state)]
    return command + [str(a) for a in arguments]


def syncer_environment(env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
    environment.update(restic_setting())
    environment.update(env or {})
    return environment


@dataclass
class Spawned:
    """A syncer started in its own session, so that a kill reaches restic and git too."""

    process: subprocess.Popen
    stdout: object
    stderr: object
    started: float

    def finish(self, timeout=120):
        """Wait for the process; return its Result."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.process)
            raise AssertionError(f"syncer did not finish within {timeout}s: {self.process.args}")
        return self.result()

    def result(self):
        self.stdout.seek(0)
        self.stderr.seek(0)
        out, err = self.stdout.read(), self.stderr.read()
        self.stdout.close()
        self.stderr.close()
        return Result(self.process.returncode, out, err)


def spawn_syncer(*arguments, policies=None, state=None, env=None):
    """Start `syncer ARGUMENTS` as its own process group leader; output goes to
    temporary files so that a full pipe never blocks it."""
    stdout = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
    process = subprocess.Popen(syncer_command(arguments, policies, state), stdout=stdout, stderr=stderr,
                               env=syncer_environment(env), start_new_session=True, cwd=REPO)
    return Spawned(process, stdout, stderr, time.monotonic())


def kill_group(process, sig=signal.SIGKILL):
    """Send `sig` to the whole process group of `process` (syncer and its children)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def group_is_gone(pgid):
    """True when no process of group `pgid` is left (children of a killed syncer included)."""
    return not group_members(pgid)


def wait_group_gone(pgid, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if group_is_gone(pgid):
            return True
        time.sleep(0.05)
    return group_is_gone(pgid)


def kill_at(spawned, delay):
    """Kill the process group `delay` seconds after it started (or at once if that
    moment has passed). Return the Result; exit_code is -9 when the kill landed."""
    remaining = spawned.started + delay - time.monotonic()
    try:
        spawned.process.wait(max(0.0, remaining))
    except subprocess.TimeoutExpired:
        kill_group(spawned.process)
    result = spawned.finish()
    assert wait_group_gone(spawned.process.pid), "a child of the killed syncer survived the kill"
    return result


def run(*arguments, policies=None, state=None, env=None, timeout=300):
    return spawn_syncer(*arguments, policies=policies, state=state, env=env).finish(timeout)


# --- invariants ---------------------------------------------------------------

def assert_clean_failure(result, exit_code=3, mentions=()):
    """A failed run says what happened in one message: the expected exit code, no
    traceback, no internal error, and the words the user needs."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output, result.output
    assert "internal error" not in result.output, result.output
    for word in mentions:
        assert word in result.stderr, f"{word!r} not in: {result.stderr}"


def assert_killed_run_claims_nothing(result, truthful_report=None, comparable=lambda report: report):
    """A run killed by the fault has no exit code of its own (-9). If it got to print
    a report before the kill landed, that report must be the true one."""
    assert result.exit_code in (-signal.SIGKILL, 0, 1, 3), result.output
    assert "Traceback" not in result.output
    if result.exit_code != -signal.SIGKILL:
        return
    text = result.stdout.strip()
    if text and truthful_report is not None:
        try:
            printed = json.loads(text)
        except ValueError:
            return  # cut off mid-report: nothing was claimed
        assert comparable(printed) == comparable(truthful_report), "the killed run printed a wrong report"


def integrity_check(state_dir):
    """Return the state database's PRAGMA integrity_check answer ('ok' when sound)."""
    path = Path(state_dir) / "state.db"
    if not path.exists():
        return "ok"  # killed before the database was created: nothing to damage
    connection = sqlite3.connect(path, timeout=30)
    try:
        return "; ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def tree_digests(root):
    """Return {relative path: (size, sha256)} of every regular file below `root`."""
    root = Path(root)
    digests = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            digests[path.relative_to(root).as_posix()] = (len(data), hashlib.sha256(data).hexdigest())
    return digests


def bytes_lost(expected, actual, allowed_new=None):
    """Bytes of `expected` files that are missing or wrong in `actual`. A file may
    also hold its new verified content (`allowed_new`), never anything else."""
    allowed_new = allowed_new or {}
    lost = 0
    for path, (size, digest) in expected.items():
        found = actual.get(path)
        if found is None or (found[1] != digest and found != allowed_new.get(path)):
            lost += size
    return lost


def partial_files(root, known):
    """Return names under `root` whose content is not one of the known contents of
    that name ({path: set of sha256}); temporary files of an interrupted write
    (dot-names the product uses for staging) are reported separately."""
    wrong, staging = [], []
    for path, (_, digest) in tree_digests(root).items():
        if path not in known:
            staging.append(path)
        elif digest not in known[path]:
            wrong.append(path)
    return wrong, staging


def mirror_refs(mirror):
    """{ref: sha} of a bare git mirror's branches and tags, or None when git cannot read
    it whole (git fsck fails)."""
    fsck = subprocess.run(["git", "-C", str(mirror), "fsck", "--no-dangling", "--no-progress"], capture_output=True)
    listed = subprocess.run(["git", "-C", str(mirror), "for-each-ref", "--format=%(refname) %(objectname)",
                             "refs/heads", "refs/tags"], capture_output=True, text=True)
    if fsck.returncode or listed.returncode:
        return None
    return dict(line.split(" ", 1) for line in listed.stdout.splitlines())


# --- figures ------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def tested_restic_version():
    """The version of the restic under test ("0.14.0"), for the figures' restic column."""
    return restic_under_test().removeprefix("restic ").strip()


def record(fault, injected=1, recovered=None, lost=0, note=""):
    """Append one line of figures: `injected` faults of kind `fault`, of which
    `recovered` were followed by a successful ordinary run without manual steps."""
    recovered = injected if recovered is None else recovered
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    line = {"fault": fault, "restic": tested_restic_version(), "injected": injected, "recovered": recovered,
            "bytes_lost": lost, "test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0], "note": note}
    with open(RESULTS, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
