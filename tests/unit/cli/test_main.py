"""The one exit path: whatever stops a command, `--json` still prints exactly one JSON
document on stdout, with an "error" object, and the exit code says what happened."""

import json

import pytest

from syncer.cli.main import main
from tests.support import free_port, write_policy, write_secret

# Every command that takes --json, with the arguments it needs to get going ("{dataset}"
# is where a dataset's name goes, when the command takes one).
COMMANDS = {
    "check-policies": [], "status": [], "run": [],
    "verify": ["{dataset}"], "pull": ["{dataset}"], "push": ["{dataset}"], "scrub": ["{dataset}"],
    "repair": ["{dataset}"], "snapshots": ["{dataset}"], "check": ["{dataset}"],
    "audit-offsite": ["{dataset}"], "findings": ["{dataset}"], "restore": ["{dataset}", "--to", "{target}"],
    "drill": ["{dataset}"],
    "job": ["verify", "{dataset}"],
}
# Commands that reach the state database (the others never open it).
WITH_STATE = [name for name in COMMANDS if name not in ("check-policies", "audit-offsite")]


@pytest.fixture
def site(tmp_path):
    """A valid policy for dataset `docs`; its offsite repository is on a port nobody listens on."""
    data = tmp_path / "data"
    data.mkdir()
    write_policy(tmp_path / "policies", "docs", {
        "path": str(data), "authority": {"type": "local", "path": str(data)},
        "offsite": {"repository": f"s3:http://127.0.0.1:{free_port()}/bucket/docs",
                    "password_file": str(write_secret(tmp_path / "restic.pass", "secret-password\n")),
                    "manifest_root": str(tmp_path / "manifests")}})
    return tmp_path


def run_json(capsys, site, command, dataset="docs", state=None, extra=()):
    arguments = [word.format(dataset=dataset, target=site / "target") for word in COMMANDS[command]]
    argv = ["--policies", str(site / "policies"), "--state-dir", str(state or site / "state"), command,
            *arguments, "--json", *extra]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out = capsys.readouterr().out
    document = json.loads(out)  # exactly one document: anything else on stdout fails here
    return exited.value.code, document


@pytest.mark.parametrize("command", COMMANDS)
def test_a_policy_error_is_one_json_document_with_every_problem(capsys, site, command):
    # The dataset's own file is broken: no command can run it, so each stops with the file's problems.
    with open(site / "policies" / "docs.yaml", "a") as policy:
        policy.write("paht: 1\n")
    code, document = run_json(capsys, site, command)
    assert code == 2
    error = document["error"]
    assert error["exit_code"] == 2 and error["message"].startswith("1 problem")
    assert any("docs.yaml" in problem and "paht" in problem for problem in error["problems"])


@pytest.mark.parametrize("command", [name for name, arguments in COMMANDS.items() if "{dataset}" in arguments])
def test_an_unknown_dataset_is_one_json_document(capsys, site, command):
    code, document = run_json(capsys, site, command, dataset="nosuch")
    assert code == 2
    assert document["error"]["exit_code"] == 2 and "unknown dataset 'nosuch'" in document["error"]["message"]
    assert "problems" not in document["error"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_usage_error_is_one_json_document(capsys, site, command):
    code, document = run_json(capsys, site, command, extra=["--no-such-option"])
    assert code == 2
    assert document["error"]["exit_code"] == 2 and "--no-such-option" in document["error"]["message"]


@pytest.mark.parametrize("command", WITH_STATE)
def test_an_operational_failure_is_one_json_document(capsys, site, command):
    (site / "state").mkdir()
    (site / "state" / "state.db").write_bytes(b"not a database, " * 1024)
    code, document = run_json(capsys, site, command)
    assert code == 3
    assert document["error"]["exit_code"] == 3 and "state database" in document["error"]["message"]


def test_a_failed_dataset_is_reported_in_the_json_report_itself(capsys, site):
    code, document = run_json(capsys, site, "audit-offsite")
    assert code == 3
    [row] = document["datasets"]
    assert row["name"] == "docs" and row["exit_code"] == 3 and "s3 bucket bucket at http://127.0.0.1" in row["error"]


def test_without_json_the_error_is_one_line_on_stderr_and_nothing_on_stdout(capsys, site):
    with pytest.raises(SystemExit) as exited:
        main(["--policies", str(site / "policies"), "--state-dir", str(site / "state"), "drill", "nosuch"])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.startswith("syncer: unknown dataset 'nosuch'") and captured.err.count("\n") == 1
