"""Throw-away SQLite tables, so that an action can look items up by key with memory that
stays flat whatever their count (a dict of a million entries is well over a gigabyte in
Python). A manifest (syncer.index.manifest) and an endpoint's listing are kept this way.

The file is the running process's own scratch: created empty, filled in batches, read
back, removed by close(). Nothing else ever reads it.
"""

import os
import pickle
import sqlite3

BATCH = 5000


class ScratchStore:
    """One table, `table` with the columns `schema` (the first is the primary key), on
    disk at `path`. A subclass says how an item becomes a row (row())."""

    table = ""
    schema = ""
    width = 0  # how many columns a row has

    def __init__(self, path):
        self.path = path
        self.connection = sqlite3.connect(path, isolation_level=None)
        # a scratch copy: losing it in a crash costs nothing, so skip the journal and the syncs
        self.connection.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;"
            f"CREATE TABLE {self.table} ({self.schema}) WITHOUT ROWID;")

    def row(self, item):
        """Return the row (a tuple of `width` values) that stores `item`."""
        raise NotImplementedError

    def load(self, items):
        """Store `items` (any iterable, consumed as it goes), in batches so nothing piles
        up; an item whose key is already stored replaces it. Return self."""
        batch = []
        self.connection.execute("BEGIN")
        for item in items:
            batch.append(self.row(item))
            if len(batch) >= BATCH:
                self.insert(batch)
                batch = []
        self.insert(batch)
        self.connection.execute("COMMIT")
        return self

    def insert(self, rows):
        marks = ", ".join("?" * self.width)
        self.connection.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES ({marks})", rows)

    def __len__(self):
        return self.connection.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]

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


class ListingStore(ScratchStore):
    """An endpoint's listing (syncer.endpoints.base.Entry objects), looked up by path.
    Entries are kept whole (pickled: their `ref` is the endpoint's own handle, any
    value), so what get() returns is what the endpoint listed. A path listed twice
    keeps its last entry, as a dict would."""

    table = "listing"
    schema = "path TEXT PRIMARY KEY, entry BLOB"
    width = 2

    def row(self, entry):
        return entry.path, pickle.dumps(entry, pickle.HIGHEST_PROTOCOL)

    def get(self, path):
        """Return the entry listed at `path`, or None."""
        row = self.connection.execute("SELECT entry FROM listing WHERE path=?", (path,)).fetchone()
        return row and pickle.loads(row[0])

    def entries(self):
        """Yield the entries in path order (SQLite's binary order, the same as the index's)."""
        # A plain cursor, not closed explicitly: a generator dropped after close() (an error
        # that left the store) must not fail on the closed connection when it is collected.
        for (entry,) in self.connection.execute("SELECT entry FROM listing ORDER BY path"):
            yield pickle.loads(entry)
