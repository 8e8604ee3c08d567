"""The hook runner: each command through /bin/sh and the process door, its output in
the log under the hook's name, its exit status returned, -1 when stopped at its timeout.
(tests/integration/test_hooks.py runs hooks around real actions.)"""

import logging

from syncer.actions.hooks import run_command


def test_output_is_logged_under_the_hooks_name_and_the_status_returned(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="syncer.hooks"):
        status = run_command("hook before_push[1]", "echo dumped; echo warned >&2; exit 4", {"PATH": "/usr/bin:/bin"},
                             timeout=60, cwd=tmp_path)
    assert status == 4
    messages = [record.getMessage() for record in caplog.records]
    assert "hook before_push[1]: dumped" in messages and "hook before_push[1]: warned" in messages


def test_a_hook_past_its_timeout_is_stopped_and_reported_as_minus_one(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="syncer.hooks"):
        status = run_command("hook before_push[1]", f"echo started > {tmp_path}/mark; sleep 300",
                             {"PATH": "/usr/bin:/bin"}, timeout=1)
    assert status == -1
    assert (tmp_path / "mark").read_text() == "started\n"
    assert "still running after 1s; stopping it and its children" in caplog.text
