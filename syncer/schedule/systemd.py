"""What systemd says about syncer's units on this machine: installed, enabled, the next
run of a timer. Asked through systemctl (the one process door); nothing is changed."""

from pathlib import Path

from syncer.process import TimedOut, run_process

RUNNING_MARKER = Path("/run/systemd/system")  # sd_booted(): present only when systemd is PID 1
TIMEOUT_SECONDS = 10


def systemd_running():
    return RUNNING_MARKER.is_dir()


def systemctl(*arguments):
    """Return (exit status, stdout) of `systemctl ARGUMENTS`."""
    output = []
    try:
        status = run_process(["systemctl", *arguments], on_output=output.append, on_errors=lambda line: None,
                             timeout=TIMEOUT_SECONDS)
    except (OSError, TimedOut):
        return 127, ""
    return status, "".join(output).strip()


def unit_state(name, unit_dir):
    """Return {"installed": bool, "enabled": "enabled"|"disabled"|..., "next_run": text or None}
    of the unit `name` (its file in `unit_dir`)."""
    installed = (Path(unit_dir) / name).is_file()
    _, enabled = systemctl("is-enabled", name)
    next_run = None
    if name.endswith(".timer"):
        _, shown = systemctl("show", name, "--property=NextElapseUSecRealtime", "--value")
        next_run = shown or None
    return {"installed": installed, "enabled": enabled or "unknown", "next_run": next_run}
