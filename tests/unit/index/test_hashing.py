"""The hashing engine: digests, the read loop's edges, change detection, the pool."""

import hashlib
import os
import threading

import pytest

from syncer.index import hashing
from syncer.index.hashing import CHUNK_SIZE, FileChanged, HashPool, hash_file, s3_multipart_etag


def pattern(size):
    return bytes(i % 251 for i in range(size))


@pytest.mark.parametrize("size", [0, 1, 4095, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5])
def test_digests_match_hashlib_at_every_read_boundary(tmp_path, size):
    path = tmp_path / "file"
    content = pattern(size)
    path.write_bytes(content)
    hashed = hash_file(path, ("md5", "sha256"))
    assert hashed.size == size
    assert hashed.digests == {"md5": hashlib.md5(content).hexdigest(),
                              "sha256": hashlib.sha256(content).hexdigest()}
    info = path.stat()
    assert (hashed.mtime_ns, hashed.ctime_ns, hashed.dev, hashed.ino) == (
        info.st_mtime_ns, info.st_ctime_ns, info.st_dev, info.st_ino)


def test_a_known_md5(tmp_path):
    # md5sum of the same 1 MiB, computed with coreutils
    path = tmp_path / "file"
    path.write_bytes(pattern(2**20))
    assert hash_file(path, ("md5",)).digests["md5"] == "8f293a2f6c19b345152f7a49bb4c643c"


class Growing:
    """A hasher that appends to the file being hashed the first time it is fed."""

    def __init__(self, path):
        self.path, self.inner, self.grew = path, hashlib.sha256(), False

    def update(self, data):
        if not self.grew:
            with open(self.path, "ab") as out:
                out.write(b"more")
            self.grew = True
        self.inner.update(data)

    def hexdigest(self):
        return self.inner.hexdigest()


@pytest.mark.parametrize("size", [10, 3 * CHUNK_SIZE])
def test_a_file_that_grows_while_read_raises_file_changed(tmp_path, monkeypatch, size):
    path = tmp_path / "file"
    path.write_bytes(pattern(size))
    monkeypatch.setitem(hashing.ALGORITHMS, "growing", lambda: Growing(path))
    with pytest.raises(FileChanged):
        hash_file(path, ("growing",))


def test_a_file_shorter_than_its_size_said_is_not_silently_accepted(tmp_path):
    # read_into_hashers trusts `expected` only as a stopping point: it reports what it read
    path = tmp_path / "file"
    path.write_bytes(b"0123456789")
    fd = hashing.open_for_reading(path)
    try:
        hasher = hashlib.md5()
        assert hashing.read_into_hashers(fd, 20, [hasher]) == 10
    finally:
        hashing.os.close(fd)
    assert hasher.hexdigest() == hashlib.md5(b"0123456789").hexdigest()


def test_s3_multipart_etag_matches_a_value_computed_with_coreutils(tmp_path):
    # split -b 5M; md5 of each part; md5 of the concatenated binary digests; "-" parts
    path = tmp_path / "file"
    path.write_bytes(pattern(12 * 2**20 + 7))
    assert s3_multipart_etag(path, 5 * 2**20) == "bc1aae5a117933da0f4800a955530870-3"


def test_s3_multipart_etag_of_an_exact_multiple_has_no_empty_last_part(tmp_path):
    path = tmp_path / "file"
    content = pattern(2 * 2**20)
    path.write_bytes(content)
    parts = [hashlib.md5(content[:2**20]).digest(), hashlib.md5(content[2**20:]).digest()]
    assert s3_multipart_etag(path, 2**20) == f"{hashlib.md5(b''.join(parts)).hexdigest()}-2"


def test_pool_returns_every_result_oldest_first_with_errors_as_values(tmp_path):
    paths = []
    for index in range(50):
        path = tmp_path / f"f{index:02d}"
        path.write_bytes(pattern(index * 1000))
        paths.append(path)
    paths.insert(10, tmp_path / "missing")
    results = []
    with HashPool(("sha256",), workers=3) as pool:
        for path in paths:
            results += pool.submit(path.name, path)
        results += list(pool.drain())
    assert [key for key, _ in results] == [path.name for path in paths]
    assert isinstance(dict(results)["missing"], FileNotFoundError)
    assert dict(results)["f07"].digests["sha256"] == hashlib.sha256(pattern(7000)).hexdigest()


def test_small_files_go_in_batches_and_every_result_still_comes_in_order(tmp_path):
    from syncer.index import hashing

    sizes = [10, 70, 200_000, 30, 0, 5, 90_000] + [40] * (2 * hashing.BATCH_FILES + 3)
    paths = []
    for number, size in enumerate(sizes):
        paths.append(tmp_path / f"f{number:03d}")
        paths[-1].write_bytes(pattern(size))
    paths.insert(3, tmp_path / "missing")
    jobs = []
    with HashPool(("sha256",), workers=2) as pool:
        original = pool.executor.submit
        pool.executor.submit = lambda function, batch: jobs.append(len(batch)) or original(function, batch)
        results = []
        for path in paths:
            results += pool.submit(path.name, path, path.stat().st_size if path.exists() else 0)
        results += list(pool.drain())
    assert [key for key, _ in results] == [path.name for path in paths]
    assert isinstance(dict(results)["missing"], FileNotFoundError)
    for path in paths:
        if path.exists():
            assert dict(results)[path.name].digests["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # a large file closes the batch before it; then full batches of small files, then the rest
    assert jobs == [3, 5, hashing.BATCH_FILES, hashing.BATCH_FILES, 3]


class Held:
    """A hasher that blocks until released, but only for the file named 'slow'."""

    release = threading.Event()
    timed_out = False

    def __init__(self):
        self.inner = hashlib.md5()

    def update(self, data):
        if data[:4] == b"slow" and not Held.release.wait(20):
            Held.timed_out = True
        self.inner.update(data)

    def hexdigest(self):
        return self.inner.hexdigest()


def test_a_slow_file_at_the_head_does_not_stall_the_files_behind_it(tmp_path, monkeypatch):
    monkeypatch.setitem(hashing.ALGORITHMS, "held", Held)
    Held.release.clear()
    Held.timed_out = False
    (tmp_path / "slow").write_bytes(b"slow file")
    fast = []
    for index in range(100):
        path = tmp_path / f"fast{index:03d}"
        path.write_bytes(b"fast %d" % index)
        fast.append(path)
    with HashPool(("held",), workers=2) as pool:
        returned = pool.submit("slow", tmp_path / "slow")
        for path in fast:  # far more than the window: only possible if the other thread keeps going
            returned += pool.submit(path.name, path)
        assert returned == []  # results still come oldest first: all wait behind "slow"
        Held.release.set()
        returned += list(pool.drain())
    assert not Held.timed_out, "submit() waited for the slow file instead of using the idle thread"
    assert [key for key, _ in returned] == ["slow"] + [path.name for path in fast]


def test_hash_file_reports_each_chunk_read(tmp_path):
    from syncer.index.hashing import CHUNK_SIZE, hash_file

    path = tmp_path / "f"
    path.write_bytes(b"x" * (CHUNK_SIZE * 2 + 5))
    seen = []
    hashed = hash_file(path, ("sha256",), on_chunk=seen.append)
    assert sum(seen) == hashed.size == CHUNK_SIZE * 2 + 5
    assert len(seen) == 3


def test_a_small_file_seen_by_the_walk_is_hashed_with_its_digests(tmp_path):
    path = tmp_path / "small"
    path.write_bytes(b"forty bytes or so of a small file\n")
    seen = os.lstat(path)
    hashed = hashing.hash_small_file(path, ("md5", "sha256"), seen)
    assert hashed.digests == {"md5": hashlib.md5(path.read_bytes()).hexdigest(),
                              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert (hashed.size, hashed.mtime_ns, hashed.ino) == (seen.st_size, seen.st_mtime_ns, seen.st_ino)


@pytest.mark.parametrize("change", ["grew", "shrank", "same size, new mtime", "replaced", "symlink"])
def test_a_small_file_that_is_not_what_the_walk_saw_is_not_hashed(tmp_path, change):
    path, other = tmp_path / "small", tmp_path / "other"
    path.write_bytes(b"0123456789")
    other.write_bytes(b"0123456789")
    seen = os.lstat(path)
    if change == "grew":
        path.write_bytes(b"0123456789+")
    elif change == "shrank":
        path.write_bytes(b"012345678")
    elif change == "same size, new mtime":
        os.utime(path, ns=(seen.st_atime_ns, seen.st_mtime_ns + 10**9))
    elif change == "replaced":
        other.replace(path)
    else:
        path.unlink()
        path.symlink_to(other)
    with pytest.raises((FileChanged, OSError)) as raised:
        hashing.hash_small_file(path, ("sha256",), seen)
    assert change == "symlink" or raised.type is FileChanged


def test_the_pool_hashes_a_file_that_changed_after_the_walk_saw_it_again(tmp_path):
    path = tmp_path / "small"
    path.write_bytes(b"before")
    seen = os.lstat(path)
    path.write_bytes(b"after, longer")
    with HashPool(("sha256",)) as pool:
        [(key, hashed)] = pool.submit("small", str(path), seen.st_size, seen)
    assert key == "small" and hashed.digests["sha256"] == hashlib.sha256(b"after, longer").hexdigest()


@pytest.mark.parametrize("changed_since_seen", [False, True])
def test_a_small_file_is_read_in_the_directory_the_walk_listed_not_where_its_path_now_leads(
        tmp_path, changed_since_seen):
    """The walk hands the pool its open directory and the file's name: a folder of the
    dataset swapped for a symlink after it was listed does not steer the read (nor the
    read again of a file that changed since it was seen) to a file outside the dataset."""
    listed, outside = tmp_path / "listed", tmp_path / "outside"
    listed.mkdir()
    outside.mkdir()
    (listed / "f").write_bytes(b"the dataset's")
    (outside / "f").write_bytes(b"someone else")
    seen = os.lstat(listed / "f")
    if changed_since_seen:
        (listed / "f").write_bytes(b"the dataset's, edited")
    directory = os.open(listed, os.O_RDONLY | os.O_DIRECTORY)
    try:
        listed.rename(tmp_path / "moved")
        listed.symlink_to(outside)
        with HashPool(("sha256",)) as pool:
            [(key, hashed)] = pool.submit("f", str(listed / "f"), seen.st_size, seen, (directory, "f"))
    finally:
        os.close(directory)
    expected = b"the dataset's, edited" if changed_since_seen else b"the dataset's"
    assert key == "f" and hashed.digests["sha256"] == hashlib.sha256(expected).hexdigest()


def test_a_file_read_again_in_its_directory_is_not_followed_as_a_symlink(tmp_path):
    (tmp_path / "outside").write_bytes(b"someone else")
    (tmp_path / "f").symlink_to(tmp_path / "outside")
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            hashing.hash_file("f", ("sha256",), directory=directory)
    finally:
        os.close(directory)


def test_a_file_hashed_by_path_must_be_the_one_the_walk_saw(tmp_path):
    (tmp_path / "f").write_bytes(b"seen")
    seen = os.lstat(tmp_path / "f")
    (tmp_path / "g").write_bytes(b"another")
    (tmp_path / "g").replace(tmp_path / "f")
    with pytest.raises(FileChanged):
        hashing.hash_file(tmp_path / "f", ("sha256",), seen=seen)
    assert hashing.hash_file(tmp_path / "f", ("sha256",)).digests["sha256"] == hashlib.sha256(b"another").hexdigest()
