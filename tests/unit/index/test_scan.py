"""scan_tree against the index: the hash cache, removals, excludes, odd entries, and
the comparison the verify report is built from."""

import hashlib
import logging
import os

import pytest

from syncer.index import scan
from syncer.index.db import AUTHORITY, LOCAL, StateDB
from syncer.index.dirty import mark_changed
from syncer.index.scan import scan_tree
from tests.support import write_tree


@pytest.fixture
def db(tmp_path):
    state = StateDB(tmp_path / "state")
    yield state
    state.close()


@pytest.fixture(params=["one process", "walker processes", "walker processes, whole subtrees",
                        "walker processes, subtrees handed back"])
def walk(request, monkeypatch):
    """Run a test with the tree walked here, then with it shared out to two walker
    processes from the first directory down, one directory a task (a large tree's
    path, with the most hand-overs between the processes), then a whole subtree a
    task (what a walker is given once many directories wait), then a subtree of
    which a walker hands back what is left after its first file, and check that
    the walkers really ran and never failed (a failure would be hidden by the
    fallback to walking here)."""
    if request.param == "one process":
        monkeypatch.setattr(scan, "walker_count", lambda db: 0)
        yield
        return
    calls, failures = [], []
    in_processes = scan.scan_in_processes

    def watched(*arguments, **keywords):
        calls.append(arguments[1])
        try:
            return in_processes(*arguments, **keywords)
        except scan.WalkerError as error:
            failures.append(error)
            raise

    monkeypatch.setattr(scan, "walker_count", lambda db: 2)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(scan, "TASKS_PER_WALKER", 10**6 if request.param == "walker processes" else 0)
    monkeypatch.setattr(scan, "TASK_FILES", 1 if request.param.endswith("handed back") else 10**6)
    monkeypatch.setattr(scan, "scan_in_processes", watched)
    yield
    assert calls and not failures


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def indexed(db, side=LOCAL):
    return {path: (size, sha) for path, size, _, _, sha in db.iterate_files("data", side)}


# Names that sort around "/" ('-' and '.' come before it, '0' right after): a directory's
# rows must be told apart from those of "a-b" and "a.txt" and from those below "a/sub".
TREE = {"a/x": "ax", "a/sub/z": "az", "a-b/y": "ab", "a.txt": "top", "a0": "a0", "b/c/d/e": "deep",
        "empty": ""}


def test_first_scan_hashes_all_and_the_second_nothing(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", TREE)
    first = scan_tree(db, "data", LOCAL, root)
    assert (first.files, first.hashed, first.bytes) == (len(TREE), len(TREE), sum(map(len, TREE.values())))
    assert indexed(db) == {path: (len(text), sha256(text)) for path, text in TREE.items()}
    second = scan_tree(db, "data", LOCAL, root)
    assert (second.files, second.hashed, second.removed) == (len(TREE), 0, 0)
    assert indexed(db) == {path: (len(text), sha256(text)) for path, text in TREE.items()}


def test_a_changed_file_is_rehashed_and_an_unchanged_one_is_not(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", TREE)
    scan_tree(db, "data", LOCAL, root)
    (root / "a/sub/z").write_text("changed, same dir")
    (root / "a-b/y").write_text("ab")  # same content and size, rewritten: ctime moves, so re-read
    stats = scan_tree(db, "data", LOCAL, root)
    assert stats.hashed == 2
    assert indexed(db)["a/sub/z"] == (len("changed, same dir"), sha256("changed, same dir"))


def test_same_size_and_mtime_but_new_inode_is_rehashed(db, tmp_path):
    root = write_tree(tmp_path / "root", {"f": "one"})
    scan_tree(db, "data", LOCAL, root)
    info = (root / "f").stat()
    (root / "g").write_text("two")
    os.utime(root / "g", ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(root / "g", root / "f")
    assert scan_tree(db, "data", LOCAL, root).hashed == 1
    assert indexed(db)["f"] == (3, sha256("two"))


def test_deep_rehashes_everything(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", TREE)
    scan_tree(db, "data", LOCAL, root)
    assert scan_tree(db, "data", LOCAL, root, deep=True).hashed == len(TREE)


def test_a_row_without_the_digest_asked_for_is_rehashed(db, tmp_path):
    root = write_tree(tmp_path / "root", {"f": "text"})
    scan_tree(db, "data", LOCAL, root, algorithms=("sha256",))
    assert scan_tree(db, "data", LOCAL, root, algorithms=("md5",)).hashed == 1
    assert scan_tree(db, "data", LOCAL, root, algorithms=("md5",)).hashed == 0


def test_a_dirty_row_is_rehashed(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", TREE)
    scan_tree(db, "data", LOCAL, root)
    mark_changed(db, "data", ["a/x"])
    assert scan_tree(db, "data", LOCAL, root).hashed == 1
    assert scan_tree(db, "data", LOCAL, root).hashed == 0


def test_removed_files_and_directories_leave_the_index(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", TREE)
    scan_tree(db, "data", LOCAL, root)
    (root / "a.txt").unlink()
    for path in ("b/c/d/e", "a/sub/z"):
        (root / path).unlink()
    os.removedirs(root / "b/c/d")
    stats = scan_tree(db, "data", LOCAL, root)
    assert stats.hashed == 0
    assert set(indexed(db)) == {"a/x", "a-b/y", "a0", "empty"}


def test_a_file_replaced_by_a_directory_loses_its_row(db, tmp_path):
    root = write_tree(tmp_path / "root", {"x": "file"})
    scan_tree(db, "data", LOCAL, root)
    (root / "x").unlink()
    write_tree(root, {"x/inner": "now a directory"})
    scan_tree(db, "data", LOCAL, root)
    assert set(indexed(db)) == {"x/inner"}


def test_excluded_paths_are_not_indexed_and_lose_rows_they_had(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", {"keep.jpg": "k", "skip.tmp": "s", ".cache/big": "c", "a/b.tmp": "t"})
    scan_tree(db, "data", LOCAL, root)
    assert len(indexed(db)) == 4
    stats = scan_tree(db, "data", LOCAL, root, exclude=["*.tmp", ".cache/**"])
    assert set(indexed(db)) == {"keep.jpg"}
    assert stats.files == 1


def test_an_excluded_directory_is_not_walked(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", {"keep": "k", "cache/deep/file": "c"})
    stats = scan_tree(db, "data", LOCAL, root, exclude=["cache"])
    assert (stats.files, set(indexed(db))) == (1, {"keep"})


def test_symlinks_and_unreadable_names_are_skipped_with_a_reason(db, tmp_path, walk):
    root = write_tree(tmp_path / "root", {"real": "r"})
    (root / "link").symlink_to(root / "real")
    write_tree(root, {"sub/file": "f"})
    (root / "sub/link").symlink_to(root / "real")
    os.close(os.open(os.path.join(os.fsencode(root), b"sub/bad-\xff"), os.O_CREAT | os.O_WRONLY, 0o600))
    stats = scan_tree(db, "data", LOCAL, root)
    reasons = dict(stats.skipped)
    assert reasons["link"] == "symlink, not compared"
    assert reasons["sub/link"] == "symlink, not compared"
    assert reasons["sub/bad-\ufffd"] == "name is not UTF-8"
    assert set(indexed(db)) == {"real", "sub/file"}


def test_a_symlinked_directory_is_not_followed(db, tmp_path):
    outside = write_tree(tmp_path / "outside", {"secret": "s"})
    root = write_tree(tmp_path / "root", {"real": "r"})
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    stats = scan_tree(db, "data", LOCAL, root)
    assert set(indexed(db)) == {"real"}
    assert dict(stats.skipped)["elsewhere"] == "symlink, not compared"


@pytest.mark.parametrize("size", [20, 100_000], ids=["small, read by the walk", "large, read on a thread"])
def test_a_folder_swapped_for_a_symlink_while_it_is_walked_does_not_steer_a_read_outside(db, tmp_path,
                                                                                           monkeypatch, size):
    """The walk reads a small file by its name in the folder it listed, and a large one
    only if the file its path leads to is the one it saw: a folder replaced by a symlink
    to elsewhere between the listing and the read is not followed (the large file is
    then noted as changing, to be hashed by the next verify)."""
    ours, theirs = "d" * size, "o" * size
    outside = write_tree(tmp_path / "outside", {"f": theirs})
    root = write_tree(tmp_path / "root", {"sub/f": ours})
    submit = scan.HashPool.submit

    def swapping(pool, key, *arguments):
        if (root / "sub").is_dir() and not (root / "sub").is_symlink():
            (root / "sub").rename(tmp_path / "moved")
            (root / "sub").symlink_to(outside, target_is_directory=True)
        return submit(pool, key, *arguments)

    monkeypatch.setattr(scan, "walker_count", lambda db: 0)
    monkeypatch.setattr(scan.HashPool, "submit", swapping)
    scan_tree(db, "data", LOCAL, root)
    [(path, size_indexed, _, _, digest)] = db.iterate_files("data", LOCAL)
    assert path == "sub/f" and digest != sha256(theirs)
    if size == 20:
        assert (size_indexed, digest) == (size, sha256(ours))
    else:
        assert digest is None and db.execute("SELECT note FROM files WHERE path='sub/f'").fetchone()[0] == \
            "kept changing while it was read"


def test_cache_keys_are_per_directory_and_relative(db, tmp_path):
    root = write_tree(tmp_path / "root", TREE)
    scan_tree(db, "data", LOCAL, root)
    info = (root / "a/x").stat()
    keys = db.cache_keys_in_directory("data", LOCAL, "a", ("sha256",))
    assert keys == {"x": ("x", info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_dev, info.st_ino)}
    assert set(db.cache_keys_in_directory("data", LOCAL, "", ("sha256",))) == {"a.txt", "a0", "empty"}
    # a folder of folders, a folder of files only, and one with both, each read its own way
    assert [set(db.cache_keys_in_directory("data", LOCAL, folder, ("sha256",))) for folder in ("b/c", "b/c/d", "a")] \
        == [set(), {"e"}, {"x"}]
    assert db.cache_keys_in_directory("data", LOCAL, "a", ("md5",))["x"][1] is None
    mark_changed(db, "data", ["a/x"])
    assert db.cache_keys_in_directory("data", LOCAL, "a", ("sha256",))["x"][1] is None


def compared(db, authority):
    """{path: (row, status)}: StateDB.compare's raw rows, each judged as verify does
    against the local authority at `authority`."""
    from syncer.actions.verify import judge_row
    from syncer.endpoints.local import LocalEndpoint

    rows = list(db.compare("data"))
    assert len({row[0] or row[5] for row in rows}) == len(rows), "a path came back twice"
    return {row[0] or row[5]: (row, judge_row(LocalEndpoint(authority), None, row).status) for row in rows}


def test_compare_reports_each_category_once(db, tmp_path):
    local = write_tree(tmp_path / "local", {"same": "1", "differs": "2", "only-here": "3", "size": "4"})
    authority = write_tree(tmp_path / "authority", {"same": "1", "differs": "X", "only-there": "5",
                                                    "size": "longer"})
    scan_tree(db, "data", LOCAL, local)
    scan_tree(db, "data", AUTHORITY, authority)
    db.upsert_files("data", AUTHORITY, [{"path": "no-checksum", "size": 1}])
    write_tree(local, {"no-checksum": "6"})
    scan_tree(db, "data", LOCAL, local)
    rows = compared(db, authority)
    assert {path: status for path, (_, status) in rows.items()} == {
        "same": "ok", "differs": "changed", "only-here": "extra_local", "only-there": "missing_local",
        "size": "changed", "no-checksum": "unverifiable"}
    sha256_of = {text: hashlib.sha256(text.encode()).hexdigest() for text in ("3", "5")}
    assert rows["only-here"][0] == ("only-here", 1, None, sha256_of["3"], None) + (None,) * 6
    assert rows["only-there"][0] == (None,) * 5 + ("only-there", 1, None, sha256_of["5"], None, None)
    assert (rows["size"][0][1], rows["size"][0][6]) == (1, 6)


def test_compare_with_every_authority_row_matched_still_lists_extras(db, tmp_path):
    local = write_tree(tmp_path / "local", {"a": "1", "b": "2"})
    authority = write_tree(tmp_path / "authority", {"a": "1"})
    scan_tree(db, "data", LOCAL, local)
    scan_tree(db, "data", AUTHORITY, authority)
    assert {path: status for path, (_, status) in compared(db, authority).items()} == {"a": "ok", "b": "extra_local"}


def test_a_failing_walker_process_falls_back_to_walking_here(db, tmp_path, monkeypatch):
    root = write_tree(tmp_path / "root", TREE)
    scan_tree(db, "data", LOCAL, root)
    (root / "a/x").write_text("changed")
    (root / "b/c/d/e").unlink()
    monkeypatch.setattr(scan, "walker_count", lambda db: 2)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(scan, "WALKER_MAIN", "import sys; sys.stdin.readline(); sys.exit(3)")
    warnings = logging.Handler(logging.WARNING)
    warnings.emit = lambda record: messages.append(record.getMessage())
    messages = []
    logging.getLogger("syncer.scan").addHandler(warnings)  # the CLI's logging set-up may stop propagation
    try:
        stats = scan_tree(db, "data", LOCAL, root)
    finally:
        logging.getLogger("syncer.scan").removeHandler(warnings)
    assert any("walking in 2 processes failed" in message for message in messages)
    assert (stats.files, stats.hashed, stats.removed) == (len(TREE) - 1, 1, 1)
    assert indexed(db)["a/x"] == (7, sha256("changed"))
    assert "b/c/d/e" not in indexed(db)


def record_calls(monkeypatch, name, calls, what):
    """Wrap scan.`name` so that each call appends what(*its arguments) to `calls`."""
    real = getattr(scan, name)

    def wrapper(*arguments, **options):
        calls.append(what(*arguments))
        return real(*arguments, **options)

    monkeypatch.setattr(scan, name, wrapper)


def test_the_trees_of_one_scan_share_one_set_of_walker_processes(db, tmp_path, monkeypatch):
    local = write_tree(tmp_path / "local", TREE)
    authority = write_tree(tmp_path / "authority", {**TREE, "a/x": "other", "only/there": "t"})
    given = []
    monkeypatch.setattr(scan, "walker_count", lambda db: 2)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 0)
    record_calls(monkeypatch, "scan_in_processes", given, lambda db, jobs, walkers, starts, *_: sorted(
        {number for number, _ in starts}))
    local_stats, authority_stats = scan.scan_trees(db, [scan.ScanJob("data", LOCAL, str(local)),
                                                        scan.ScanJob("data", AUTHORITY, str(authority))])
    assert given == [[0, 1]]  # one hand-over, holding both trees
    assert (local_stats.files, authority_stats.files) == (len(TREE), len(TREE) + 1)
    assert indexed(db) == {path: (len(text), sha256(text)) for path, text in TREE.items()}
    assert indexed(db, AUTHORITY) == {**indexed(db), "a/x": (5, sha256("other")), "only/there": (1, sha256("t"))}


def test_once_one_tree_proves_large_the_trees_after_it_go_to_the_walkers_unwalked_here(db, tmp_path, monkeypatch):
    local = write_tree(tmp_path / "local", TREE)
    authority = write_tree(tmp_path / "authority", TREE)
    walked_here, given = [], []
    monkeypatch.setattr(scan, "walker_count", lambda db: 2)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 2)
    record_calls(monkeypatch, "scan_directories", walked_here, lambda db, job, *_: job.side)
    record_calls(monkeypatch, "scan_in_processes", given, lambda db, jobs, walkers, starts, *_: list(starts))
    stats = scan.scan_trees(db, [scan.ScanJob("data", LOCAL, str(local)), scan.ScanJob("data", AUTHORITY,
                                                                                       str(authority))])
    assert walked_here == [LOCAL]  # its first files, here; then the walkers take the rest and the authority
    [starts] = given
    assert (1, "") in starts and all(number == 0 for number, start in starts if start)
    assert [(one.files, one.hashed) for one in stats] == [(len(TREE), len(TREE))] * 2
    assert indexed(db) == indexed(db, AUTHORITY) == {path: (len(text), sha256(text)) for path, text in TREE.items()}


def test_a_walker_given_a_subtree_hands_back_what_it_has_not_walked_after_task_files(db, tmp_path, monkeypatch):
    root = write_tree(tmp_path / "root", {f"top/{folder}/{name}": name for folder in "abcd" for name in "xyz"})
    answers = []
    monkeypatch.setattr(scan, "walker_count", lambda db: 2)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(scan, "TASKS_PER_WALKER", 0)  # every task a subtree
    monkeypatch.setattr(scan, "TASK_FILES", 3)  # a folder's worth
    record_calls(monkeypatch, "merge_walker_result", answers, lambda stats, visited, answer: answer["left"])
    stats = scan_tree(db, "data", LOCAL, root)
    assert sum(len(left) for left in answers) >= 3  # all of "top" was one task: b, c, d handed back
    assert (stats.files, stats.hashed) == (12, 12) and len(indexed(db)) == 12


def test_a_tree_the_index_knows_to_be_large_goes_to_the_walkers_before_any_is_walked_here(db, tmp_path,
                                                                                        monkeypatch):
    root = write_tree(tmp_path / "root", TREE)
    walked_here, given = [], []
    monkeypatch.setattr(scan, "walker_count", lambda db: 2)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", len(TREE) + 1)
    record_calls(monkeypatch, "scan_directories", walked_here, lambda db, job, starts, *_: starts)
    record_calls(monkeypatch, "scan_in_processes", given, lambda db, jobs, walkers, starts, *_: list(starts))
    scan_tree(db, "data", LOCAL, root)  # fewer files than PARALLEL_MIN_FILES: walked here, whole
    assert (walked_here, given) == ([[""]], [])
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", len(TREE))  # the index now holds that many rows
    walked_here.clear()
    (root / "a/x").write_text("changed")
    stats = scan_tree(db, "data", LOCAL, root)
    assert (walked_here, given) == ([], [[(0, "")]])
    assert (stats.files, stats.hashed, stats.removed) == (len(TREE), 1, 0)
    assert indexed(db)["a/x"] == (7, sha256("changed"))


def rot_in_place(path):
    """Change one byte in place and put the mtime back, as a storage fault would leave it."""
    info = path.stat()
    with open(path, "r+b") as handle:  # in place: same inode
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_a_reread_under_unchanged_size_and_mtime_finds_corruption(db, tmp_path, walk):
    from syncer.index import integrity

    write_tree(tmp_path / "t", {"a/x.bin": "original bytes", "b.txt": "fine"})
    scan_tree(db, "data", LOCAL, tmp_path / "t")
    good = indexed(db)["a/x.bin"][1]
    rot_in_place(tmp_path / "t/a/x.bin")  # the write moves ctime, so the scan re-reads it
    stats = scan_tree(db, "data", LOCAL, tmp_path / "t")
    assert stats.corrupt == ["a/x.bin"]
    [record] = integrity.open_corruptions(db, "data")
    assert record["path"] == "a/x.bin" and record["expected_sha256"] == good
    assert indexed(db)["a/x.bin"][1] != good  # the index says what is there now


def test_the_watchers_refresh_finds_corruption_too(db, tmp_path):
    from syncer.index.dirty import refresh_paths

    write_tree(tmp_path / "t", {"x.bin": "original bytes"})
    scan_tree(db, "data", LOCAL, tmp_path / "t")
    rot_in_place(tmp_path / "t/x.bin")
    mark_changed(db, "data", ["x.bin"])
    assert refresh_paths(db, "data", tmp_path / "t", ["x.bin"]).corrupt == ["x.bin"]


def test_an_edit_that_moves_mtime_is_not_corruption(db, tmp_path):
    write_tree(tmp_path / "t", {"x.txt": "one"})
    scan_tree(db, "data", LOCAL, tmp_path / "t")
    (tmp_path / "t/x.txt").write_text("two")
    info = (tmp_path / "t/x.txt").stat()
    os.utime(tmp_path / "t/x.txt", ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    assert scan_tree(db, "data", LOCAL, tmp_path / "t").corrupt == []
