"""Hooks around actions, with real shell commands."""

import logging
import os
import subprocess
import uuid

import pytest
import yaml

from syncer.actions.hooks import with_hooks
from syncer.policy import load_policies
from tests.support import run_syncer, write_policy, write_tree


def make(tmp_path, hooks):
    local = write_tree(tmp_path / "local", {"a.txt": "a"})
    authority = write_tree(tmp_path / "authority", {"a.txt": "a"})
    write_policy(tmp_path / "policies", "docs", {
        "path": str(local), "authority": {"type": "local", "path": str(authority)}, "hooks": hooks})
    return tmp_path


def verify(tmp_path, env=None):
    return run_syncer("verify", "--json", policies=tmp_path / "policies", state=tmp_path / "state", env=env)


def test_order_on_success(tmp_path):
    trace = tmp_path / "trace"
    make(tmp_path, {"before_verify": [f"echo before >> {trace}"], "after_verify": [f"echo after >> {trace}"],
                    "on_error": [f"echo error >> {trace}"], "finally": [f"echo finally >> {trace}"],
                    "before_push": [f"echo wrong-action >> {trace}"]})
    result = verify(tmp_path)
    assert result.exit_code == 0, result.output
    assert trace.read_text().split() == ["before", "after", "finally"]


def test_order_when_the_action_fails(tmp_path):
    trace = tmp_path / "trace"
    # The before hook unmounts the authority, so verify itself fails.
    make(tmp_path, {"before_verify": [f"mv {tmp_path}/authority {tmp_path}/gone; echo before >> {trace}"],
                    "after_verify": [f"echo after >> {trace}"], "on_error": [f"echo error $SYNCER_STATUS >> {trace}"],
                    "finally": [f"echo finally $SYNCER_STATUS >> {trace}"]})
    result = verify(tmp_path)
    assert result.exit_code == 3
    assert trace.read_text().splitlines() == ["before", "error 3", "finally 3"]


def test_failing_before_hook_aborts_with_exit_3_and_names_the_hook(tmp_path):
    trace = tmp_path / "trace"
    make(tmp_path, {"before_verify": ["true", "exit 7", f"echo never >> {trace}"],
                    "after_verify": [f"echo after >> {trace}"], "on_error": [f"echo error >> {trace}"],
                    "finally": [f"echo finally >> {trace}"]})
    result = verify(tmp_path)
    assert result.exit_code == 3
    assert "hook before_verify[2] (docs.yaml: hooks.before_verify) exited with status 7" in result.stderr
    assert trace.read_text().split() == ["error", "finally"]
    status = run_syncer("status", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
    assert "verify" not in status.json()["datasets"][0]["last"]  # the action never ran


def test_failing_after_hook_makes_the_action_fail(tmp_path):
    make(tmp_path, {"after_verify": ["exit 4"]})
    result = verify(tmp_path)
    assert result.exit_code == 3
    assert "hook after_verify[1]" in result.stderr and "status 4" in result.stderr


def test_environment_has_facts_and_no_secrets(tmp_path):
    dump = tmp_path / "env.txt"
    make(tmp_path, {"before_verify": [f"env > {dump}"]})
    result = verify(tmp_path, env={"CREDENTIALS_DIRECTORY": str(tmp_path), "RESTIC_PASSWORD": "hunter22",
                                   "GITLAB_TOKEN": "glpat-secret"})
    assert result.exit_code == 0, result.output
    seen = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert seen["SYNCER_DATASET"] == "docs" and seen["SYNCER_ACTION"] == "verify"
    assert seen["SYNCER_STATUS"] == "0"
    for withheld in ("CREDENTIALS_DIRECTORY", "RESTIC_PASSWORD", "GITLAB_TOKEN"):
        assert withheld not in seen
    assert "hunter22" not in dump.read_text() and "glpat-secret" not in dump.read_text()


def test_output_goes_to_the_log_with_the_hook_name(tmp_path):
    make(tmp_path, {"before_verify": ["echo dumping database; echo done >&2"]})
    result = verify(tmp_path)
    assert "hook before_verify[1]: dumping database" in result.stderr
    assert "hook before_verify[1]: done" in result.stderr


def test_hanging_hook_is_killed_at_its_timeout_with_its_children(tmp_path):
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    make(tmp_path, {"before_verify": [f"sleep {marker} & sleep {marker}; echo never"], "timeout": "1s"})
    result = verify(tmp_path)
    assert result.exit_code == 3
    assert "timed out after 1s" in result.stderr
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.stdout == "", f"hook processes left behind: {left.stdout}"


def test_check_policies_validates_hooks(tmp_path):
    make(tmp_path, {"before_push": "not a list", "after_verify": [""], "timeout": "soon", "befor_push": []})
    result = run_syncer("check-policies", policies=tmp_path / "policies", state=tmp_path / "state")
    assert result.exit_code == 2
    assert "docs.yaml: hooks.before_push: must be a list, not a string" in result.stderr
    assert "docs.yaml: hooks.after_verify.0: must be a shell command (a non-empty string)" in result.stderr
    assert "docs.yaml: hooks.timeout: 'soon' is not a duration (like 30s, 10m or 1h)" in result.stderr
    assert "docs.yaml: hooks.befor_push: unknown key (did you mean 'before_push'?)" in result.stderr


def test_dry_run_shows_hooks_without_running_them(tmp_path, caplog):
    trace = tmp_path / "trace"
    make(tmp_path, {"before_push": [f"echo ran >> {trace}"], "finally": [f"echo ran >> {trace}"]})
    [policy] = load_policies(tmp_path / "policies")
    with caplog.at_level(logging.INFO, logger="syncer.hooks"):
        result = with_hooks(policy, "push", lambda: {"exit_code": 0}, dry_run=True)
    assert result == {"exit_code": 0}
    assert not trace.exists()
    assert f"would run hook before_push[1]: echo ran >> {trace}" in caplog.text


@pytest.mark.parametrize("value", ["30s", "10m", "1h", 90])
def test_durations_accepted(tmp_path, value):
    make(tmp_path, {"timeout": value})
    assert run_syncer("check-policies", policies=tmp_path / "policies").exit_code == 0


def test_hook_runs_in_the_dataset_directory(tmp_path):
    make(tmp_path, {"before_verify": ["pwd > ../where"]})
    assert verify(tmp_path).exit_code == 0
    assert (tmp_path / "where").read_text().strip() == os.fspath(tmp_path / "local")


def test_push_hooks_see_the_snapshot(tmp_path):
    from tests.integration.offsite_support import make_dataset

    dataset = make_dataset(tmp_path, {"a.txt": "a"})
    trace = tmp_path / "trace"
    policy = dataset.policies / "photos.yaml"
    document = yaml.safe_load(policy.read_text())
    document["hooks"] = {"before_push": [f"echo before >> {trace}"],
                         "after_push": [f"echo after $SYNCER_SNAPSHOT_ID $SYNCER_BYTES_ADDED >> {trace}"],
                         "before_drill": [f"echo drill >> {trace}"], "before_restore": [f"echo restore >> {trace}"],
                         "before_check": [f"echo check >> {trace}"]}
    policy.write_text(yaml.safe_dump(document))
    pushed = dataset.syncer("push", "--json")
    assert pushed.exit_code == 0, pushed.output
    snapshot = pushed.json()["datasets"][0]["snapshot"]
    lines = trace.read_text().splitlines()
    assert lines[0] == "before"
    word, seen_id, added = lines[1].split()
    assert word == "after" and seen_id == snapshot and int(added) > 0
    for command in (("drill", "photos"), ("check", "photos"), ("restore", "photos", "--to", tmp_path / "out")):
        result = dataset.syncer(*command)
        assert result.exit_code == 0, result.output
    assert trace.read_text().splitlines()[2:] == ["drill", "check", "restore"]
