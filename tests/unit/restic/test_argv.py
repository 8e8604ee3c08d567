"""restic argv builders, version table and output parsers: pure functions."""

import pytest

from syncer.errors import ResticError
from syncer.restic import argv
from syncer.restic.repository import parse_backup_summary, unreadable_files
from syncer.restic.runner import (
    ResticContext,
    ResticFailed,
    classify_exit,
    describe_failure,
    mask_url,
    masked_command,
)
from syncer.restic.versions import FEATURES, has_feature, parse_version


def test_backup_argv_tags_host_excludes_and_ends_options_before_paths():
    built = argv.backup_argv(["/srv/photos", "/var/lib/syncer/manifests/photos"], "syncer:photos", "photos",
                             ["*.tmp", "/srv/photos/.cache/**"])
    assert built == ["backup", "--json", "--tag", "syncer:photos", "--host", "photos", "--exclude", "*.tmp",
                     "--exclude", "/srv/photos/.cache/**", "--", "/srv/photos", "/var/lib/syncer/manifests/photos"]


def test_no_password_or_repository_in_any_argv():
    everything = (argv.backup_argv(["/d"], "t", "h") + argv.forget_argv("t", "h", {"keep_last": 1})
                  + argv.restore_argv("abc", "/x", ["/d"]) + argv.check_argv("5%") + argv.snapshots_argv("t", "h"))
    assert not any("password" in part or part in ("-r", "--repo", "-p") for part in everything)


def test_excludes_with_a_slash_are_anchored_at_the_dataset():
    assert argv.restic_excludes("/srv/photos/", ["*.tmp", ".cache/**", "/raw/", "sub/dir/"]) == [
        "*.tmp", "/srv/photos/.cache/**", "/srv/photos/raw", "/srv/photos/sub/dir"]


def test_forget_is_scoped_to_tag_and_host_and_groups_by_them():
    built = argv.forget_argv("syncer:photos", "board", {"keep_daily": 7, "keep_within": "1y", "keep_last": 3})
    assert built == ["forget", "--json", "--tag", "syncer:photos", "--host", "board", "--group-by", "host,tags",
                     "--keep-daily", "7", "--keep-last", "3", "--keep-within", "1y"]
    assert "--prune" not in built


def test_unlock_never_removes_all_locks():
    assert argv.unlock_argv() == ["unlock"]


def test_restore_argv_with_includes_or_include_file():
    assert argv.restore_argv("abcd", "/tmp/t", ["/srv/a"]) == ["restore", "abcd", "--target", "/tmp/t",
                                                                 "--include", "/srv/a"]
    assert argv.restore_argv("abcd", "/t", include_file="/f", json_output=True) == [
        "restore", "abcd", "--target", "/t", "--json", "--include-file", "/f"]


def test_check_argv_reads_a_subset_only_when_asked():
    assert argv.check_argv() == ["check"]
    assert argv.check_argv("5%") == ["check", "--read-data-subset", "5%"]


def test_escape_glob_makes_a_path_match_itself():
    assert argv.escape_glob("/srv/a[1]*?.jpg") == "/srv/a\\[1]\\*\\?.jpg"
    assert argv.escape_glob("/plain/name é") == "/plain/name é"


@pytest.mark.parametrize("repository, expected", [
    ("s3:http://127.0.0.1:9000/bucket/prefix/deep", ("http://127.0.0.1:9000", "bucket", "prefix/deep")),
    ("s3:s3.amazonaws.com/bucket", ("https://s3.amazonaws.com", "bucket", "")),
    ("s3:https://s3.example.com/b/p/", ("https://s3.example.com", "b", "p")),
    ("/srv/restic", None),
    ("sftp:host:/x", None),
    ("s3:host-only", None),
])
def test_parse_s3_repository(repository, expected):
    assert argv.parse_s3_repository(repository) == expected


def test_version_table_and_parsing():
    version = parse_version("restic 0.14.0 compiled with go1.19.8 on linux/amd64\n")
    assert version == (0, 14, 0)
    assert not has_feature(version, "restore_json")
    assert has_feature((0, 17, 1), "restore_json")
    assert all(isinstance(minimum, tuple) and len(minimum) == 3 for minimum in FEATURES.values())
    with pytest.raises(ResticError):
        parse_version("not restic")


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
])
def test_exit_status_table_with_restic_014_messages(status, stderr, kind):
    assert classify_exit(status, stderr) == kind


def context(repository="/r"):
    return ResticContext(repository=repository, password_file="/etc/pw", cache_dir="/c")


def test_failure_messages_are_specific():
    assert "wrong password" in describe_failure("wrong_password", context(), "snapshots", 1, [])
    assert "does not exist" in describe_failure("no_repository", context(), "snapshots", 1, [])
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


def test_backup_summary_and_unreadable_files():
    messages = [{"message_type": "verbose_status"}, {"message_type": "summary", "snapshot_id": "abcd1234"}]
    assert parse_backup_summary(messages)["snapshot_id"] == "abcd1234"
    with pytest.raises(ResticFailed):
        parse_backup_summary([])
    errors = [{"message_type": "error", "error": {"Op": "open", "Path": "/d/x", "Err": 13}, "item": "/d/x"}]
    found = unreadable_files(errors, ["error: open /d/y: permission denied", "Warning: at least one"])
    assert found == [("/d/x", "open: Permission denied"), ("/d/y", "permission denied")]
