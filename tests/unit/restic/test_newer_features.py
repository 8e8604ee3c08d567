"""What newer restic offers, looked up in the one version table: dedicated exit codes,
--retry-lock, --skip-if-unchanged, check --json; and what 0.14 does instead, said at -v."""

import logging

import pytest

from syncer.restic import argv as build
from syncer.restic.repository import ResticRepository, broken_packs_of, restore_summary
from syncer.restic.runner import ResticContext, ResticFailed, ResticResult, classify_exit
from syncer.restic.versions import describe_fallback

PACK_A, PACK_B = "a" * 64, "b" * 64


@pytest.mark.parametrize("status, version, meaning", [
    (10, (0, 17, 0), "no_repository"),
    (11, (0, 17, 0), "locked"),
    (12, (0, 17, 0), "fatal"),  # 12 means a wrong password from 0.17.1 on
    (12, (0, 17, 1), "wrong_password"),
    (12, (0, 18, 0), "wrong_password"),
    (11, (0, 16, 0), "fatal"),
    (1, (0, 14, 0), "wrong_password"),  # 0.14: read from the message
])
def test_exit_codes_are_read_directly_from_the_release_that_has_them(status, version, meaning):
    stderr = "Fatal: wrong password or no key found" if status == 1 else "Fatal: something"
    assert classify_exit(status, stderr, version) == meaning


def test_argv_of_the_newer_flags():
    backup = build.backup_argv(["/d"], "syncer:d", "d", skip_if_unchanged=True)
    assert "--skip-if-unchanged" in backup
    assert build.with_retry_lock(backup, "2m")[-4:] == ["--retry-lock", "2m", "--", "/d"]
    assert build.with_retry_lock(build.check_argv("1/30", json_output=True), "2m") == [
        "check", "--read-data-subset", "1/30", "--json", "--retry-lock", "2m"]


def test_broken_packs_from_check_json_or_from_014s_messages():
    summary = [{"message_type": "summary", "num_errors": 2, "broken_packs": [PACK_B, PACK_A]}]
    assert broken_packs_of(summary, []) == [PACK_A, PACK_B]
    lines = [f"Pack ID does not match, want {PACK_A}, got {'c' * 64}",
             f"pack {PACK_B} contains 2 errors: [blob ...]", "error for tree d7903e1a:"]
    assert broken_packs_of(None, lines) == [PACK_A, PACK_B]
    assert broken_packs_of([{"message_type": "summary", "broken_packs": None}], lines) == []


def test_restore_summary_is_read_where_restic_gives_one():
    result = ResticResult(0, [{"message_type": "summary", "files_restored": 3, "bytes_restored": 10}], "", [], [])
    assert restore_summary(result) == {"files_restored": 3, "bytes_restored": 10}
    assert restore_summary(ResticResult(0, [], "restoring <Snapshot ...>", [], [])) is None


def stand_in(tmp_path, version, check_script):
    """A repository whose restic is a script: `version` for `restic version`, the
    arguments of every other call appended to calls.log."""
    binary = tmp_path / f"restic-{version}" / "restic"
    binary.parent.mkdir()
    binary.write_text(f'#!/bin/sh\nif [ "$1" = version ]; then echo "restic {version} compiled with go"; exit 0; fi\n'
                      f'echo "$@" >> "{tmp_path}/calls.log"\n{check_script}\n')
    binary.chmod(0o755)
    (tmp_path / "password").write_text("pw\n")
    return ResticRepository(ResticContext(repository=str(tmp_path / "repo"), password_file=tmp_path / "password",
                                          cache_dir=tmp_path / "cache", binary=str(binary)))


def test_check_on_018_waits_for_locks_and_counts_broken_packs_from_its_json(tmp_path):
    repository = stand_in(tmp_path, "0.18.0", (
        f"echo '{{\"message_type\":\"summary\",\"num_errors\":1,\"broken_packs\":[\"{PACK_A}\"]}}'\n"
        "echo '{\"message_type\":\"exit_error\",\"code\":1,\"message\":\"Fatal: repository contains errors\"}' >&2\n"
        "exit 1"))
    result = repository.check("1/30")
    assert not result.ok and result.broken_packs == [PACK_A]
    assert (tmp_path / "calls.log").read_text().split() == [
        "check", "--read-data-subset", "1/30", "--json", "--retry-lock", "2m"]


def test_on_014_each_newer_feature_is_left_out_and_said_at_v(tmp_path, caplog):
    repository = stand_in(tmp_path, "0.14.0", (
        f"echo 'Pack ID does not match, want {PACK_B}, got {PACK_A}' >&2\n"
        "echo 'Fatal: repository contains errors' >&2; exit 1"))
    with caplog.at_level(logging.DEBUG, logger="syncer"):
        result = repository.check()
        repository.check()
        with pytest.raises(ResticFailed):
            repository.backup(["/d"], "syncer:d", "d", skip_if_unchanged=True)
    assert not result.ok and result.broken_packs == [PACK_B]
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0] == "check" and "--skip-if-unchanged" not in calls[-1] and "--retry-lock" not in calls[-1]
    said = [record.getMessage() for record in caplog.records if "lacks" in record.getMessage()]
    assert describe_fallback((0, 14, 0), "check_json") in said
    assert describe_fallback((0, 14, 0), "retry_lock") in said
    assert describe_fallback((0, 14, 0), "skip_if_unchanged") in said
    assert len(said) == len(set(said)), "each fallback is said once"
