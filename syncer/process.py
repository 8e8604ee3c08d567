"""The one way syncer starts another program: restic, git and the hook commands.

Each child runs in a process group of its own, so a timeout or an interrupt stops it
together with everything it started (restic alone stays in syncer's group: see
run_process); every child gets SIGTERM when syncer dies, so no orphan keeps a restic
lock. The command line is logged with every registered secret
masked (secrets belong in the child's environment, never in its argv). Output is
handed to the caller line by line; each program's runner decides what the lines and
the exit status mean (restic's exit table, git's EndpointError, a failed hook).
"""

import ctypes
import logging
import os
import shlex
import signal
import subprocess
import threading
import time

from syncer.log import mask

log = logging.getLogger("syncer.process")
GRACE_SECONDS = 5  # between the signals that stop a child, and for its output once it exited
# A timeout asks the group to stop, then kills it. An interrupt first sends what Ctrl-C
# at a terminal would (restic removes its repository lock on SIGINT).
TIMEOUT_SIGNALS = (signal.SIGTERM, signal.SIGKILL)
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
PR_SET_PDEATHSIG = 1

try:
    # Loaded here, not in the child: between fork and exec only the calls themselves are safe.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    prctl, set_disposition = libc.prctl, libc.signal
    set_disposition.argtypes, set_disposition.restype = (ctypes.c_int, ctypes.c_void_p), ctypes.c_void_p
except OSError:
    prctl = set_disposition = None
SIG_DFL = 0


# The programs running through run_process, with whether each has a group of its own.
RUNNING, RUNNING_LOCK = set(), threading.Lock()


class TimedOut(Exception):
    """The program ran past its timeout; it and its process group were stopped."""


def prepare_child():
    """In the child, before exec: get SIGTERM when syncer dies, and take SIGINT as a
    program started from a terminal does. syncer started in the background of a script
    (`syncer push &`: a shell without job control starts it so) has SIGINT ignored, and
    its children would inherit that: a shell cannot even trap it then, and the SIGINT
    that stops a child first (a hook's cleanup, git) would be lost."""
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        set_disposition(signal.SIGINT, SIG_DFL)


def run_process(argv, *, on_output, on_errors=None, stdout_file=None, environment=None, cwd=None, timeout=None,
                shell=False, display=None, logger=log, own_group=True, usage=None):
    """Run `argv` (a shell command with `shell`) in its own process group; return its exit status.

    Each line the program writes to stdout goes to on_output(line), each stderr line to
    on_errors(line) (lines decoded as UTF-8, line ending kept); without `on_errors`,
    stderr joins stdout. With `stdout_file` (an open binary file), stdout goes there
    instead. `display` is the command as it may be logged (default: argv); registered
    secrets are masked in it.

    Raise TimedOut after `timeout` seconds, once the group is stopped. An exception in
    the caller (KeyboardInterrupt included) stops the group and propagates. Raise
    OSError (FileNotFoundError: no such program) when the program cannot be started.

    Without `own_group` the child stays in syncer's process group, and is stopped
    alone: restic, so that whatever signals syncer's group reaches restic at once, as
    it always has (Ctrl-C at a terminal, a kill of the group).

    With `usage` (a dict), the program's peak resident memory in bytes (sampled, see
    wait_reaping) is stored as usage["peak_rss"] once it exited: restic's index grows
    with the repository, and on a small board restic is what gets killed for memory first.
    """
    shown = display if display is not None else (argv if shell else shlex.join(argv))
    logger.debug("running %s", mask(shown))
    process = subprocess.Popen(
        argv, shell=shell, env=environment, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=stdout_file if stdout_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE if on_errors else subprocess.STDOUT,
        start_new_session=own_group, preexec_fn=prepare_child)
    failures, readers = [], []  # failures: what a line handler raised, raised again here
    child = (process, own_group)
    with RUNNING_LOCK:
        RUNNING.add(child)
    try:
        for stream, handler in ((process.stdout, on_output), (process.stderr, on_errors)):
            if stream is not None:
                readers.append(start_reader(stream, handler, failures))
        exit_status, peak_rss = wait_reaping(process, timeout)
        if usage is not None:
            usage["peak_rss"] = peak_rss
    except subprocess.TimeoutExpired:
        logger.error("%s: still running after %.0fs; stopping it and its children", mask(shown), timeout)
        stop(process, TIMEOUT_SIGNALS, own_group)
        finish_reading(readers, failures)
        raise TimedOut(f"timed out after {timeout:.0f}s") from None
    except BaseException:
        stop(process, INTERRUPT_SIGNALS, own_group)  # syncer itself is stopping: leave nothing behind
        raise
    finally:
        with RUNNING_LOCK:
            RUNNING.discard(child)
    finish_reading(readers, failures)
    return exit_status


def stop_running_children():
    """Stop every program still running through this door, as an interrupt would (restic
    removes its lock on SIGINT), and wait until each is gone: for a process about to
    exit without waiting for the threads that started them (the daemon abandoning its
    steps). Return how many there were."""
    with RUNNING_LOCK:
        children = list(RUNNING)
    stoppers = [threading.Thread(target=stop, args=(process, INTERRUPT_SIGNALS, own_group))
                for process, own_group in children]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()
    return len(children)


def wait_reaping(process, timeout=None):
    """Wait for `process` as Popen.wait(timeout) does, sampling its peak resident memory
    (VmHWM in /proc) as it runs. Return (exit status, peak RSS in bytes, or 0 when it
    ended before the first sample). Raise subprocess.TimeoutExpired after `timeout`
    seconds, the process left running.

    Sampled, not taken from os.wait4: Linux's ru_maxrss of a child counts the memory of
    the parent it was forked from, so syncer's own would be added to restic's. What grows
    in the last 50 ms of a run is missed: restic's peak comes well before its end.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay, peak = 0.0005, 0
    while True:
        peak = max(peak, peak_rss_of(process.pid))
        if process.poll() is not None:  # Popen reaps it: safe beside stop_running_children's thread
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(process.args, timeout)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)  # Popen.wait's own back-off
    return process.returncode, peak


def peak_rss_of(pid):
    """The peak resident memory (VmHWM) of process `pid` in bytes, or 0 when /proc does
    not say (gone, or a zombie)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def start_reader(stream, handler, failures):
    """Hand each line of `stream` to `handler` on a thread of its own. If the handler
    raises, keep draining the pipe (a full pipe would block the program) and keep
    the exception for the caller."""
    def forward():
        with stream:
            for raw in stream:
                if failures:
                    continue
                try:
                    handler(raw.decode("utf-8", "replace"))
                except Exception as error:
                    failures.append(error)

    reader = threading.Thread(target=forward, daemon=True)
    reader.start()
    return reader


def finish_reading(readers, failures):
    """Wait for the rest of the output, then raise what a line handler raised. A
    descendant left running in the background may hold the pipe open for longer: its
    later lines are still forwarded, but the caller does not wait for them."""
    deadline = time.monotonic() + GRACE_SECONDS
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    if failures:
        raise failures[0]


def stop(process, signals, own_group=True):
    """Send `signals` in turn to the process group of `process` (to `process` alone
    without `own_group`), each given GRACE_SECONDS to end it, until nothing is left."""
    send = os.killpg if own_group else os.kill
    for number in signals:
        try:
            send(process.pid, number)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None and not (own_group and group_exists(process.pid)):
                return
            time.sleep(0.05)
    process.wait()


def group_exists(group):
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_alive(pid):
    """Return whether a process `pid` runs on this machine (a zombie, dead but not yet
    reaped by its parent, does not)."""
    if not process_exists(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return process_exists(pid)


def process_exists(pid):
    """Return whether `pid` names a process, a zombie included (what a signal reaches)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True
