"""The process door: output handed over line by line, the exit status returned, the
command logged with secrets masked, and the child's whole process group stopped at a
timeout or when the caller is interrupted."""

import logging
import os
import signal
from pathlib import Path

import pytest

from syncer import process
from syncer.log import register_secret
from syncer.process import TimedOut, run_process
from tests.support import group_members


@pytest.fixture
def short_grace(monkeypatch):
    """One second between the signals that stop a group, instead of five."""
    monkeypatch.setattr(process, "GRACE_SECONDS", 1)


def test_stdout_and_stderr_reach_their_handlers_and_the_exit_status_is_returned():
    output, errors = [], []
    status = run_process(["sh", "-c", "echo out; echo err >&2; exit 7"], on_output=output.append,
                         on_errors=errors.append)
    assert status == 7
    assert output == ["out\n"] and errors == ["err\n"]


def test_the_childs_own_peak_memory_is_reported():
    usage = {}
    # python allocating 64 MiB, touching it, and staying a moment: the sampled peak must show it
    script = "import time; data = bytearray(64 * 2**20); data[::4096] = b'x' * len(data[::4096]); time.sleep(0.3)"
    assert run_process(["python3", "-c", script], on_output=print, usage=usage) == 0
    assert 64 * 2**20 < usage["peak_rss"] < 512 * 2**20
    small = {}
    run_process(["sleep", "0.3"], on_output=print, usage=small, timeout=10)
    # its own, not the memory of the (much larger) test process it was forked from
    assert 0 < small["peak_rss"] < 16 * 2**20


def test_without_an_error_handler_stderr_joins_stdout():
    output = []
    assert run_process(["sh", "-c", "echo out; echo err >&2"], on_output=output.append) == 0
    assert sorted(output) == ["err\n", "out\n"]


def test_a_shell_command_runs_in_cwd_with_the_environment_given(tmp_path):
    output = []
    run_process('pwd; echo "$ONLY_THIS"', shell=True, on_output=output.append, cwd=tmp_path,
                environment={"ONLY_THIS": "here", "PATH": os.environ["PATH"]})
    assert output == [f"{tmp_path}\n", "here\n"]


def test_the_child_leads_a_process_group_of_its_own():
    output = []
    run_process(["sh", "-c", "ps -o pid= -o pgid= -p $$"], on_output=output.append)
    pid, group = output[0].split()
    assert pid == group and int(group) != os.getpgrp()


def test_restic_stays_in_syncers_group_and_is_stopped_alone(short_grace):
    """own_group=False: what signals syncer's group (Ctrl-C, a kill of the group) reaches
    the child at once; a timeout stops the child, never syncer's own group."""
    output = []
    with pytest.raises(TimedOut):
        run_process(["sh", "-c", "ps -o pid= -o pgid= -p $$; exec sleep 300"], on_output=output.append, timeout=1,
                    own_group=False)
    pid, group = (int(field) for field in output[0].split())
    assert group == os.getpgrp()
    assert not Path(f"/proc/{pid}").exists()


def test_a_missing_program_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_process([str(tmp_path / "no-such-program")], on_output=print)


def test_the_logged_command_has_secrets_masked(caplog):
    register_secret("door-secret-4711")
    with caplog.at_level(logging.DEBUG, logger="syncer.process"):
        run_process(["echo", "--token=door-secret-4711"], on_output=lambda line: None)
    assert "running echo --token=***" in caplog.text
    assert "door-secret-4711" not in caplog.text


def test_a_timeout_stops_the_whole_process_group(short_grace):
    output = []
    with pytest.raises(TimedOut):
        # The shell reports its PID (its group's ID), then waits on a child that
        # ignores SIGTERM and a grandchild in the background: all must go.
        run_process(["sh", "-c", "echo $$; (trap '' TERM; sleep 300) & sleep 300 & wait"], on_output=output.append,
                    timeout=1)
    group = int(output[0])
    assert group_members(group) == []


@pytest.mark.parametrize("started_ignoring_sigint", [False, True])
def test_an_interrupted_caller_stops_the_group_with_sigint_first(tmp_path, short_grace, started_ignoring_sigint):
    """Ctrl-C at a terminal reaches syncer, not the child's group: the door passes it on
    as SIGINT (restic removes its lock on SIGINT), then stops the group. Also when
    syncer itself was started with SIGINT ignored (in the background of a script: a
    shell without job control starts `cmd &` so): its child is not, or the shell could
    not even trap it."""
    trace = tmp_path / "trace"
    script = f"echo $$; trap 'echo INT >> {trace}; exit 130' INT; echo ready; sleep 300 & wait"
    output = []

    def interrupt(number, frame):
        raise KeyboardInterrupt

    def take(line):
        output.append(line)
        if line == "ready\n":
            os.kill(os.getpid(), signal.SIGUSR1)  # handled in the main thread, inside the door's wait

    previous = signal.signal(signal.SIGUSR1, interrupt)
    previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN) if started_ignoring_sigint else None
    try:
        with pytest.raises(KeyboardInterrupt):
            run_process(["sh", "-c", script], on_output=take)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)
    assert trace.read_text() == "INT\n"
    assert group_members(int(output[0])) == []


def test_a_failing_line_handler_is_raised_and_the_program_is_not_left_blocked():
    def refuse(line):
        raise ValueError(f"cannot take {line.strip()}")

    # Far more than a pipe holds: a reader that stopped draining would block seq forever.
    with pytest.raises(ValueError, match="cannot take 1"):
        run_process(["seq", "1", "200000"], on_output=refuse)
