"""syncer.fsio: the one way a file is written into a dataset, and the one check of a
tree about to be moved into place."""

import hashlib
import io
import os
import stat
from contextlib import contextmanager

import pytest

from syncer.fsio import (
    DigestMismatch,
    UnsafePath,
    find_escaping_link,
    find_special_file,
    is_temporary_name,
    move_file,
    remove_file,
    remove_temporaries,
    write_file,
)


def source(data):
    return lambda: io.BytesIO(data)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_writes_new_folders_and_file_with_digests_and_the_umask_default_mode(tmp_path):
    old = os.umask(0o027)
    try:
        written = write_file(tmp_path, "a/b/c.txt", source(b"hello"), algorithms=("md5", "sha256"))
    finally:
        os.umask(old)
    target = tmp_path / "a/b/c.txt"
    assert target.read_bytes() == b"hello"
    assert written.digests == {"md5": hashlib.md5(b"hello").hexdigest(), "sha256": sha256(b"hello")}
    assert written.size == 5 and written.info.st_ino == target.stat().st_ino
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0o666 less the umask, not mkstemp's 0o600


def test_a_replaced_file_keeps_its_mode_and_is_kept_when_asked(tmp_path):
    target = tmp_path / "site/index.html"
    target.parent.mkdir()
    target.write_bytes(b"old")
    target.chmod(0o644)
    os.chmod(target, 0o4755)  # setuid does not survive new content
    write_file(tmp_path, "site/index.html", source(b"new"), expected={"sha256": sha256(b"new")},
               keep_replaced=tmp_path / "kept")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert (tmp_path / "kept/site/index.html").read_bytes() == b"old"


def test_an_explicit_mode_and_mtime_are_set(tmp_path):
    write_file(tmp_path, "x.bin", source(b"x"), mode=0o600, mtime_ns=1_500_000_000_000_000_000)
    info = (tmp_path / "x.bin").stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_mtime_ns == 1_500_000_000_000_000_000


def test_a_symlinked_parent_is_refused_and_nothing_is_written_outside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "sub").symlink_to(outside)
    with pytest.raises(UnsafePath, match="sub is a symlink here; not writing through it"):
        write_file(root, "sub/deeper/b.txt", source(b"b"))
    (root / "file").write_bytes(b"")
    with pytest.raises(UnsafePath, match="file is a file here"):
        write_file(root, "file/b.txt", source(b"b"))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/x", "a//b", "./a", "", "a/\x00",
                                      "a/.syncer-tmp-" + "0" * 32])
def test_names_that_leave_the_root_are_refused(tmp_path, relative):
    with pytest.raises(UnsafePath):
        write_file(tmp_path / "root", relative, source(b"x"))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kind", ["symlink", "folder"])
def test_a_target_that_is_not_a_regular_file_is_not_replaced(tmp_path, kind):
    (tmp_path / "outside.txt").write_bytes(b"keep")
    root = tmp_path / "root"
    root.mkdir()
    if kind == "symlink":
        (root / "t.txt").symlink_to(tmp_path / "outside.txt")
    else:
        (root / "t.txt").mkdir()
    with pytest.raises(UnsafePath, match="t.txt exists here and is a"):
        write_file(root, "t.txt", source(b"evil"))
    assert (tmp_path / "outside.txt").read_bytes() == b"keep"


@pytest.mark.parametrize("expected, size", [({"sha256": sha256(b"other")}, None), ({}, 99)])
def test_a_digest_or_size_mismatch_leaves_nothing_and_the_target_as_it_was(tmp_path, expected, size):
    (tmp_path / "t.txt").write_bytes(b"good")
    with pytest.raises(DigestMismatch):
        write_file(tmp_path, "t.txt", source(b"bad bytes"), expected=expected, size=size,
                   keep_replaced=tmp_path / "kept")
    assert sorted(os.listdir(tmp_path)) == ["t.txt"]
    assert (tmp_path / "t.txt").read_bytes() == b"good"


def test_the_temporary_file_has_syncers_exact_shape_and_is_gone_after_a_failed_read(tmp_path):
    seen = []

    @contextmanager
    def failing():
        seen.extend(os.listdir(tmp_path))
        yield io.BytesIO(b"x")
        raise OSError("the connection dropped")

    with pytest.raises(OSError, match="connection dropped"):
        write_file(tmp_path, "t.txt", failing)
    [name] = seen
    assert is_temporary_name(name) and len(name) == len(".syncer-tmp-") + 32
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, temporary", [
    (".syncer-tmp-" + "0" * 32, True), (".syncer-tmp-" + "a1" * 16, True), (".syncer-tmp-" + "A" * 32, False),
    (".syncer-tmp-" + "0" * 31, False), (".syncer-tmp-" + "0" * 33, False), (".syncer-pull-notes.txt", False),
    (".syncer-repair-keep.txt", False), (".syncer-tmp-" + "0" * 32 + ".txt", False), ("x.syncer-tmp-", False),
])
def test_only_the_exact_shape_is_temporary(name, temporary):
    assert is_temporary_name(name) is temporary


def test_remove_temporaries_removes_only_the_exact_shape(tmp_path):
    mine = ".syncer-tmp-" + "f" * 32
    for name in (mine, ".syncer-pull-notes.txt", ".syncer-repair-x", ".syncer-tmp-notes"):
        (tmp_path / "d" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "d" / name).write_bytes(b"x")
    assert remove_temporaries(tmp_path, "d") == 1
    assert sorted(os.listdir(tmp_path / "d")) == [".syncer-pull-notes.txt", ".syncer-repair-x", ".syncer-tmp-notes"]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / mine).write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert remove_temporaries(tmp_path, "link") == 0  # never through a symlink
    assert (tmp_path / "elsewhere" / mine).exists()


def links(root, pairs):
    root.mkdir(parents=True, exist_ok=True)
    for name, target in pairs:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)


@pytest.mark.parametrize("pairs, escaping", [
    ([("a", "b.txt"), ("d/up", "../b.txt")], None),
    ([("abs", "/etc/passwd")], "abs"),
    ([("d/out", "../../x")], "d/out"),
    # The repro of issue 19: each link alone stays inside, the chain leaves.
    ([("x", "."), ("evil", "x/x/x/x/x/x/x/x/x/x/../../../../../../../../../../etc/passwd")], "evil"),
    # Back in through the root's own name: inside here, outside once renamed.
    ([("in", "../root/b.txt")], "in"),
    ([("d/up", ".."), ("d/y", "up/d/up/..")], "d/y"),
    ([("loop1", "loop2"), ("loop2", "loop1")], "loop1"),
    ([("dangling", "missing/../../x")], "dangling"),
    ([("fine", "missing/../b.txt")], None),
])
def test_find_escaping_link(tmp_path, pairs, escaping):
    root = tmp_path / "root"
    links(root, pairs)
    found = find_escaping_link(root)
    assert (found[0] if found else None) == escaping


def test_move_and_remove_never_reach_through_a_symlinked_folder(tmp_path):
    root, outside, trash = tmp_path / "root", tmp_path / "outside", tmp_path / "trash"
    root.mkdir()
    outside.mkdir()
    (outside / "precious").write_bytes(b"not the dataset's")
    (root / "sub").symlink_to(outside)
    with pytest.raises(UnsafePath, match="sub is a symlink here"):
        move_file(root, "sub/precious", trash / "sub/precious")
    with pytest.raises(UnsafePath, match="sub is a symlink here"):
        remove_file(root, "sub/precious")
    assert (outside / "precious").read_bytes() == b"not the dataset's"
    assert not trash.exists()


def test_move_file_moves_the_file_and_remove_file_accepts_one_already_gone(tmp_path):
    root, trash = tmp_path / "root", tmp_path / "trash"
    (root / "a").mkdir(parents=True)
    (root / "a" / "b.txt").write_bytes(b"b")
    move_file(root, "a/b.txt", trash / "a/b.txt")
    assert (trash / "a" / "b.txt").read_bytes() == b"b" and not (root / "a" / "b.txt").exists()
    with pytest.raises(FileNotFoundError):
        move_file(root, "a/b.txt", trash / "again")
    remove_file(root, "a/b.txt")
    remove_file(root, "gone/b.txt")


def test_find_special_file_names_a_fifo_and_passes_files_folders_and_links(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "file").write_bytes(b"x")
    (root / "a" / "link").symlink_to("file")
    assert find_special_file(root) is None
    os.mkfifo(root / "a" / "b" / "pipe")
    assert find_special_file(root) == ("a/b/pipe", "a FIFO")
