"""A snapshot's manifest held in a throw-away SQLite file, so that restore and drill
look entries up by path with memory that stays flat whatever the file count (a dict
of a million entries is well over a gigabyte in Python).

Entries come in as dicts {"path", "size", "mtime_ns", "md5", "sha256"} and go out the
same way; iteration is in path order (SQLite's binary order, the same as the index's).
"""

import os
import sqlite3
from contextlib import closing

BATCH = 5000
COLUMNS = ("path", "size", "mtime_ns", "md5", "sha256")
SELECT = "SELECT path, size, mtime_ns, md5, sha256 FROM manifest"


class ManifestStore:
    """The entries of one manifest, on disk at `path` (created; removed by close())."""

    def __init__(self, path):
        self.path = path
        self.connection = sqlite3.connect(path, isolation_level=None)
        # a scratch copy: losing it in a crash costs nothing, so skip the journal and the syncs
        self.connection.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;"
            "CREATE TABLE manifest (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, md5 TEXT, sha256 TEXT)"
            " WITHOUT ROWID;")

    def load(self, entries):
        """Store `entries` (an iterable of dicts), in batches so nothing piles up."""
        batch = []
        self.connection.execute("BEGIN")
        for entry in entries:
            batch.append(tuple(entry.get(column) for column in COLUMNS))
            if len(batch) >= BATCH:
                self.insert(batch)
                batch = []
        self.insert(batch)
        self.connection.execute("COMMIT")
        return self

    def insert(self, rows):
        self.connection.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?, ?)", rows)

    def get(self, path):
        """Return the entry of `path`, or None."""
        row = self.connection.execute(SELECT + " WHERE path=?", (path,)).fetchone()
        return row and dict(zip(COLUMNS, row))

    def __contains__(self, path):
        return self.connection.execute("SELECT 1 FROM manifest WHERE path=?", (path,)).fetchone() is not None

    def __len__(self):
        return self.connection.execute("SELECT COUNT(*) FROM manifest").fetchone()[0]

    def files(self):
        """Yield the entries that are files (they have a size), in path order."""
        with closing(self.connection.cursor()) as cursor:
            for row in cursor.execute(SELECT + " WHERE size IS NOT NULL ORDER BY path"):
                yield dict(zip(COLUMNS, row))

    def total_bytes(self):
        return self.connection.execute("SELECT COALESCE(SUM(size), 0) FROM manifest").fetchone()[0]

    def algorithms(self):
        """The digests needed to check every file: SHA-256 where an entry has it, else MD5
        (syncer.actions.offsite.expected_digest's preference)."""
        sha256, md5 = self.connection.execute(
            "SELECT EXISTS (SELECT 1 FROM manifest WHERE sha256 IS NOT NULL), "
            "EXISTS (SELECT 1 FROM manifest WHERE sha256 IS NULL AND md5 IS NOT NULL)").fetchone()
        return tuple(name for name, needed in (("md5", md5), ("sha256", sha256)) if needed)

    def close(self):
        self.connection.close()
        for suffix in ("", "-journal"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
