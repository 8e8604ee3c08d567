"""`make demo` on a copy of the checkout's demo: it finds what it planted, and the
commands it ends with work exactly as printed."""

import shlex
import shutil
import subprocess

from tests.support import REPO, demo_environment, run_demo, run_syncer


def test_the_demo_ends_with_commands_that_work_as_printed(tmp_path):
    lines = run_demo(tmp_path).splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("demo: next"))
    commands = [shlex.split(line) for line in lines[start + 1:] if line.startswith("  ")]
    prefix = commands[0][:-1]
    assert prefix[-4:] == ["--policies", "policies", "--state-dir", ".demo/state"], prefix
    assert [command[len(prefix):] for command in commands] == [
        ["status"], ["verify", "demo"], ["snapshots", "demo"], ["drill", "demo"]]
    results = {}
    for command in commands:
        ran = subprocess.run(command, cwd=tmp_path, env=demo_environment(), capture_output=True, text=True, timeout=300)
        results[" ".join(command[len(prefix):])] = ran
        assert ran.returncode in (0, 1), (command, ran.stdout, ran.stderr)
        assert "Traceback" not in ran.stderr
    status = results["status"]
    assert status.returncode == 1 and "demo" in status.stdout  # the planted findings are open
    assert "never" not in status.stdout.split("stale:")[0], status.stdout  # the demo's runs are there
    assert results["snapshots demo"].returncode == 0 and "demo (" in results["snapshots demo"].stdout


def test_status_without_a_state_database_says_where_it_looked_and_creates_nothing(tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(REPO / "policies" / "demo.yaml", policies)
    missing = tmp_path / "no-state"
    result = run_syncer("status", policies=policies, state=missing)
    assert result.exit_code == 2, result.output
    assert f"no state database in {missing}" in result.stderr
    assert "--state-dir DIR or SYNCER_STATE_DIR" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and not missing.exists()
