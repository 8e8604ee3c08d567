"""A snapshot's manifest held in a throw-away SQLite file (syncer.index.scratch), so that restore and drill
look entries up by path with memory that stays flat whatever the file count (a dict
of a million entries is well over a gigabyte in Python).

Entries come in as dicts {"path", "size", "mtime_ns", "md5", "sha256"} and go out the
same way; iteration is in path order (SQLite's binary order, the same as the index's).
"""

from syncer.index.scratch import ScratchStore

COLUMNS = ("path", "size", "mtime_ns", "md5", "sha256")
SELECT = "SELECT path, size, mtime_ns, md5, sha256 FROM manifest"


class ManifestStore(ScratchStore):
    """The entries of one manifest, on disk at `path` (created; removed by close())."""

    table = "manifest"
    schema = "path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, md5 TEXT, sha256 TEXT"
    width = len(COLUMNS)

    def row(self, entry):
        return tuple(entry.get(column) for column in COLUMNS)

    def get(self, path):
        """Return the entry of `path`, or None."""
        row = self.connection.execute(SELECT + " WHERE path=?", (path,)).fetchone()
        return row and dict(zip(COLUMNS, row))

    def __contains__(self, path):
        return self.connection.execute("SELECT 1 FROM manifest WHERE path=?", (path,)).fetchone() is not None

    def files(self):
        """Yield the entries that are files (they have a size), in path order."""
        # a plain cursor, as ListingStore.entries (a generator collected after close() stays quiet)
        for row in self.connection.execute(SELECT + " WHERE size IS NOT NULL ORDER BY path"):
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
