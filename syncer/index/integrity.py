"""What scrub and repair keep in the state database: when each file's content was
last confirmed, and the corruptions found with the digests the file should have."""

import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS corruptions (
    dataset TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    expected_md5 TEXT,
    expected_sha256 TEXT,
    found_md5 TEXT,
    found_sha256 TEXT,
    found_at REAL NOT NULL,
    resolved_at REAL,
    resolution TEXT,                -- repaired from <source> | unrecoverable | edited
    PRIMARY KEY (dataset, path)
) WITHOUT ROWID;
"""


def ensure_schema(db):
    db.connection.executescript(SCHEMA)


def oldest_confirmed(db, dataset):
    """Yield (path, size, mtime_ns, md5, sha256, hashed_at) of indexed local files
    with a digest, the longest unconfirmed first."""
    yield from db.execute(
        "SELECT path, size, mtime_ns, md5, sha256, hashed_at FROM files WHERE dataset=? AND side='local' "
        "AND (md5 IS NOT NULL OR sha256 IS NOT NULL) ORDER BY hashed_at ASC, path", (dataset,))


def confirm(db, dataset, path, when=None):
    """Record that the file's content was just read and matched its digests."""
    db.execute("UPDATE files SET hashed_at=? WHERE dataset=? AND side='local' AND path=?",
               (when or time.time(), dataset, path))


def record_corruption(db, dataset, path, size, mtime_ns, expected, found):
    """Remember a corruption with the digests the file should have and has.

    The index row takes the digests found, so that verify reports the file as it
    really is; the expected digests stay here for repair.
    """
    ensure_schema(db)
    with db.transaction():
        db.execute(
            "INSERT OR REPLACE INTO corruptions (dataset, path, size, mtime_ns, expected_md5, expected_sha256,"
            " found_md5, found_sha256, found_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (dataset, path, size, mtime_ns, expected.get("md5"), expected.get("sha256"), found.get("md5"),
             found.get("sha256"), time.time()))
        for algorithm, digest in found.items():
            db.execute(f"UPDATE files SET {algorithm}=? WHERE dataset=? AND side='local' AND path=?",
                       (digest, dataset, path))


def open_corruptions(db, dataset):
    """Return the unresolved corruptions of `dataset` as dicts."""
    ensure_schema(db)
    cursor = db.execute(
        "SELECT path, size, mtime_ns, expected_md5, expected_sha256, found_md5, found_sha256, found_at "
        "FROM corruptions WHERE dataset=? AND resolved_at IS NULL ORDER BY path", (dataset,))
    keys = ("path", "size", "mtime_ns", "expected_md5", "expected_sha256", "found_md5", "found_sha256", "found_at")
    return [dict(zip(keys, row)) for row in cursor]


def resolve_corruption(db, dataset, path, resolution):
    db.execute("UPDATE corruptions SET resolved_at=?, resolution=? WHERE dataset=? AND path=?",
               (time.time(), resolution, dataset, path))


def confirmed_share_since(db, dataset, since):
    """Return the share of indexed bytes whose content was confirmed after `since`; a
    file with an open corruption is not confirmed, however recently it was read."""
    ensure_schema(db)
    total, recent = db.execute(
        "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(CASE WHEN hashed_at >= ? AND NOT EXISTS (SELECT 1 FROM "
        "corruptions c WHERE c.dataset=files.dataset AND c.path=files.path AND c.resolved_at IS NULL) "
        "THEN size ELSE 0 END), 0) FROM files WHERE dataset=? AND side='local'", (since, dataset)).fetchone()
    return recent / total if total else None


def missing_with_authority_digests(db, dataset):
    """Yield (path, md5, sha256, size) from the authority's listing for each file the
    last verify found missing locally."""
    yield from db.execute(
        "SELECT a.path, a.md5, a.sha256, a.size FROM findings f JOIN files a ON a.dataset=f.dataset "
        "AND a.side='authority' AND a.path=f.path WHERE f.dataset=? AND f.status='missing_local'", (dataset,))
