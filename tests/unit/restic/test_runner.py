"""The restic door: exit table, failure messages, masked command, environment, and
a run against stand-in restic binaries (shell scripts) for the exit mapping."""

import logging
from dataclasses import replace

import pytest

from syncer.restic.runner import (
    RepositoryLocked,
    RepositoryMissing,
    RepositoryUnreachable,
    ResticContext,
    ResticFailed,
    ResticInterrupted,
    WrongPassword,
    classify_exit,
    describe_failure,
    mask_url,
    masked_command,
    run_restic,
)


@pytest.mark.parametrize("status, stderr, kind", [
    (0, "", "ok"),
    (3, "Warning: at least one source file could not be read", "partial"),
    (10, "", "no_repository"),
    (11, "", "locked"),
    (12, "", "wrong_password"),
    (130, "", "interrupted"),
    (1, "Fatal: wrong password or no key found", "wrong_password"),
    (1, "Fatal: unable to open config file: stat /r/config: no such file or directory", "no_repository"),
    (1, "Fatal: repository does not exist: unable to open", "no_repository"),
    (1, "unable to create lock in backend: repository is already locked by PID 7 on h", "locked"),
    (1, "Fatal: something else", "fatal"),
    (77, "", "fatal"),
    (1, 'Fatal: unable to open config file: Stat: Get "http://127.0.0.1:1/b/?location=": dial tcp '
        '127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?', "unreachable"),
    (1, 'Fatal: unable to open config file: Stat: Get "https://s3.example/b/?location=": dial tcp: lookup '
        's3.example: no such host', "unreachable"),
    (10, "Fatal: repository does not exist: unable to open config file: i/o timeout", "unreachable"),
])
def test_exit_status_table_with_restic_014_messages(status, stderr, kind):
    assert classify_exit(status, stderr, (0, 17, 1)) == kind  # exit 12 means a wrong password from 0.17.1


@pytest.mark.parametrize("status", [10, 11, 12])
def test_dedicated_exit_codes_mean_nothing_before_restic_017(status):
    assert classify_exit(status, "", (0, 14, 0)) == "fatal"
    assert classify_exit(status, "", None) != "fatal"  # a version that cannot be told trusts the number


def context(repository="/r"):
    return ResticContext(repository=repository, password_file="/etc/pw", cache_dir="/c")


def test_failure_messages_are_specific():
    assert "wrong password" in describe_failure("wrong_password", context(), "snapshots", 1, [])
    missing = describe_failure("no_repository", context(), "snapshots", 1, [])
    assert "does not exist: missing or not mounted" in missing and "syncer push" not in missing
    unreachable = describe_failure("unreachable", context(), "snapshots", 1, ["dial tcp: connect: connection refused"])
    assert "unreachable (connection refused)" in unreachable and "syncer push" not in unreachable
    message = describe_failure("locked", context(), "forget", 1, ["repository is already locked by PID 7 on h"])
    assert "PID 7" in message
    message = describe_failure("fatal", context(), "backup", 1, ["noise", "Fatal: disk exploded"])
    assert "Fatal: disk exploded" in message and "exit 1" in message


def test_logged_command_hides_url_credentials():
    assert mask_url("rest:https://user:secret@host:8000/repo") == "rest:https://***@host:8000/repo"
    assert mask_url("s3:http://127.0.0.1/b") == "s3:http://127.0.0.1/b"
    logged = masked_command(context("rest:https://user:hunter22@h/r"), ["snapshots", "--json"])
    assert "hunter22" not in logged and "snapshots --json" in logged


def test_environment_carries_secrets_and_drops_ambient_ones(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient")
    monkeypatch.setenv("RESTIC_PASSWORD", "ambient")
    environment = ResticContext("s3:http://h/b", "/pw", "/cache", env={"AWS_SECRET_ACCESS_KEY": "mine"}).environment()
    assert environment["AWS_SECRET_ACCESS_KEY"] == "mine"
    assert "RESTIC_PASSWORD" not in environment
    assert environment["RESTIC_PASSWORD_FILE"] == "/pw" and environment["RESTIC_CACHE_DIR"] == "/cache"


def stand_in_context(tmp_path, script, password="hunter2-door"):
    """A ResticContext whose restic is the shell `script`."""
    binary = tmp_path / "restic"
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(0o755)
    (tmp_path / "password").write_text(password + "\n")
    return ResticContext(repository=str(tmp_path / "repo"), password_file=tmp_path / "password",
                         cache_dir=tmp_path / "cache", binary=str(binary))


@pytest.mark.parametrize("script, error", [
    ('echo "Fatal: wrong password or no key found" >&2; exit 1', WrongPassword),
    ('echo "Fatal: unable to open config file: stat: no such file or directory" >&2; exit 1', RepositoryMissing),
    ("exit 10", RepositoryMissing),
    ("exit 11", RepositoryLocked),
    ("exit 12", WrongPassword),
    ("exit 130", ResticInterrupted),
    ('echo "Fatal: disk exploded" >&2; exit 1', ResticFailed),
    ("exit 77", ResticFailed),
])
def test_a_non_zero_exit_becomes_the_error_of_the_exit_table(tmp_path, script, error):
    with pytest.raises(error):
        run_restic(stand_in_context(tmp_path, script), ["snapshots"])


def test_a_restic_run_past_offsite_timeout_is_stopped_and_named(tmp_path):
    context = replace(stand_in_context(tmp_path, "exec sleep 30"), timeout=1, label="photos.yaml: offsite")
    with pytest.raises(RepositoryUnreachable, match=r"restic backup on offsite repository .* failed: still running "
                                                    r"after photos.yaml: offsite.timeout \(1s\), so syncer stopped it"):
        run_restic(context, ["backup"])


def test_json_output_status_lines_and_a_partial_backup(tmp_path):
    script = ('echo \'{"message_type":"status","percent_done":0.5}\'\n'
              'echo \'{"message_type":"summary","snapshot_id":"abcd"}\'\n'
              'echo plain text\n'
              'echo \'{"message_type":"error","error":{"Op":"open","Err":13},"item":"/d/x"}\' >&2\n'
              "exit 3\n")
    statuses = []
    result = run_restic(stand_in_context(tmp_path, script), ["backup", "--json"], json_output=True,
                        on_status=statuses.append)
    assert result.partial and result.exit_status == 3
    assert result.messages == [{"message_type": "summary", "snapshot_id": "abcd"}]
    assert statuses == [{"message_type": "status", "percent_done": 0.5}]
    assert result.stdout == "plain text\n"
    assert [error["item"] for error in result.errors] == ["/d/x"]


def test_the_password_and_repository_stay_out_of_argv_and_the_log(tmp_path, caplog):
    script = ('echo "$@" > "$0.argv"; echo "$RESTIC_PASSWORD_FILE" > "$0.env"\n'
              'echo "Fatal: hunter2-door leaked" >&2; exit 1\n')
    context = stand_in_context(tmp_path, script)
    with caplog.at_level(logging.DEBUG, logger="syncer"), pytest.raises(ResticFailed) as caught:
        run_restic(context, ["snapshots", "--json"])
    assert (tmp_path / "restic.argv").read_text() == "snapshots --json\n"
    assert (tmp_path / "restic.env").read_text().strip() == str(tmp_path / "password")
    assert "hunter2-door" not in str(caught.value) and "***" in str(caught.value)
    assert "hunter2-door" not in caplog.text
    assert f"RESTIC_REPOSITORY={tmp_path / 'repo'} {tmp_path / 'restic'} snapshots --json" in caplog.text


def test_restic_dump_writes_stdout_to_the_file(tmp_path):
    context = stand_in_context(tmp_path, "printf 'bytes\\000and more'\n")
    with open(tmp_path / "out", "wb") as handle:
        run_restic(context, ["dump", "abcd", "/x"], stdout_file=handle)
    assert (tmp_path / "out").read_bytes() == b"bytes\0and more"
