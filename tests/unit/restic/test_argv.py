"""restic argv builders: pure functions."""

import pytest

from syncer.restic import argv


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


def test_excludes_anchored_at_a_dataset_path_with_glob_characters_escape_the_path_only():
    assert argv.restic_excludes("/srv/ph[2024]*?\\x", ["private/**", "*.tmp"]) == [
        "/srv/ph\\[2024]\\*\\?\\\\x/private/**", "*.tmp"]


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


def test_copy_takes_one_dataset_and_names_its_source_in_the_environment_only():
    assert argv.copy_argv("syncer:photos", "photos") == ["copy", "--tag", "syncer:photos", "--host", "photos"]
    assert argv.init_copy_argv() == ["init", "--copy-chunker-params"]
    assert argv.copy_source_environment("s3:h/b", "/k/main.pass", from_repo=True) == {
        "RESTIC_FROM_REPOSITORY": "s3:h/b", "RESTIC_FROM_PASSWORD_FILE": "/k/main.pass"}
    assert argv.copy_source_environment("s3:h/b", "/k/main.pass", from_repo=False) == {
        "RESTIC_REPOSITORY2": "s3:h/b", "RESTIC_PASSWORD_FILE2": "/k/main.pass"}


def test_the_copy_source_names_follow_the_version_table():
    from syncer.restic.versions import has_feature

    assert has_feature((0, 14, 0), "copy_from_repo") and not has_feature((0, 13, 1), "copy_from_repo")
