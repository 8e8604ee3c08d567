"""Verify by changes: the index queries that compare only the paths that changed on
either side and carry every other path's finding over from the last verify.

The findings table holds, after every successful verify, the verdict on every path
that is not ok; a path with an authority row and no finding was ok. As long as a
path's two rows did not change since then (which the watch vouches for, and, for a
listed authority, diff_listing checks), its finding still holds: only the changed
paths need comparing, and the dataset's counts follow from the last verify's.
"""

import json
import time

from syncer.index.db import AUTHORITY, parent_of

# A changed path covers itself and everything below it (a directory moved or deleted):
# two conditions, each a primary-key lookup or range ('0' follows '/'), never one with OR.
COVERS = ("{alias}.path = ?", "{alias}.path >= ? AND {alias}.path < ?")
# The columns of StateDB.compare: local (path, size, md5, sha256, note), authority (path,
# size, md5, sha256, etag, note).
COMPARE_SQL = """
SELECT l.path, l.size, l.md5, l.sha256, l.note, a.path, a.size, a.md5, a.sha256, a.etag, a.note
FROM files l LEFT JOIN files a ON a.dataset = l.dataset AND a.side = 'authority' AND a.path = l.path
WHERE l.dataset = ? AND l.side = 'local' AND {local}
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, a.path, a.size, a.md5, a.sha256, a.etag, a.note FROM files a
WHERE a.dataset = ? AND a.side = 'authority' AND {authority} AND NOT EXISTS (
  SELECT 1 FROM files l WHERE l.dataset = a.dataset AND l.side = 'local' AND l.path = a.path)
"""
# The paths the last verify found ok: an authority row and no finding (with no local row
# it would have been missing_local). Only verify writes authority rows, so they are the
# last verify's until this one changes them; local rows may have changed since (a push
# after the watch's quiet spell re-indexes its changes), so they cannot say.
OK_SQL = """
SELECT COUNT(*) FROM files a WHERE a.dataset = ? AND a.side = 'authority' AND {authority} AND NOT EXISTS (
  SELECT 1 FROM findings f WHERE f.dataset = a.dataset AND f.path = a.path)
"""
LISTING_COLUMNS = ("path", "size", "mtime_ns", "md5", "sha256", "etag", "note")
# A listed path whose row is new, gone, or differs in any stored column.
LISTING_DIFF_SQL = """
SELECT n.path FROM temp.listing n LEFT JOIN files a ON a.dataset = ? AND a.side = 'authority' AND a.path = n.path
WHERE a.path IS NULL OR a.size IS NOT n.size OR a.mtime_ns IS NOT n.mtime_ns OR a.md5 IS NOT n.md5
   OR a.sha256 IS NOT n.sha256 OR a.etag IS NOT n.etag OR a.note IS NOT n.note
UNION ALL
SELECT a.path FROM files a WHERE a.dataset = ? AND a.side = 'authority'
AND NOT EXISTS (SELECT 1 FROM temp.listing n WHERE n.path = a.path)
"""


def covering_paths(paths):
    """Return `paths` without those below another of them, in path-component order: a
    changed directory covers what is below it, and every path is then compared once."""
    kept = []
    for path in sorted({path for path in paths if path}, key=lambda path: path.split("/")):
        # In component order whatever lies below a path comes right after it.
        if kept and path.startswith(kept[-1] + "/"):
            continue
        kept.append(path)
    return kept


def covered(path):
    """The parameters of COVERS for one path: the path itself, then the range below it."""
    return ((path,), (path + "/", path + "0"))


def previous_counts(db, dataset):
    """Return the counts of the latest verify of `dataset`, or None unless it finished
    with its findings written (ok or findings): a verify that failed, was killed or is
    still running may have changed rows without judging them, and nothing can be
    carried over from it. Call it before the new verify's run is recorded."""
    row = db.execute("SELECT result, summary FROM runs WHERE dataset=? AND action='verify' "
                     "ORDER BY started_at DESC, id DESC LIMIT 1", (dataset,)).fetchone()  # runs_dataset's order
    if not row or row[0] not in ("ok", "findings") or not row[1]:
        return None
    counts = json.loads(row[1]).get("counts")
    if not isinstance(counts, dict) or "ok" not in counts:
        return None
    # Counts are drawn from the table from here on, so it must hold what the run counted.
    # One written before findings were keyed by status too kept one status a path (a
    # symlink here where the authority has a file is missing_local and unverifiable), and
    # counts drawn from it would drop a finding: such a dataset walks once more.
    written = db.count_findings(dataset)
    if any(written.get(status, 0) != number for status, number in counts.items() if status != "ok"):
        return None
    return counts


def count_ok(db, dataset, scope):
    """Return how many paths below `scope` (covering_paths) the last verify found ok.
    Call it before this verify changes any authority row."""
    total = 0
    for condition, parameters in zip_covers(scope):
        total += db.execute(OK_SQL.format(authority=condition.format(alias="a")),
                            (dataset, *parameters)).fetchone()[0]
    return total


def compare_scope(db, dataset, scope):
    """Yield StateDB.compare's rows for the paths below `scope` (covering_paths) only."""
    for condition, parameters in zip_covers(scope):
        sql = COMPARE_SQL.format(local=condition.format(alias="l"), authority=condition.format(alias="a"))
        yield from db.execute(sql, (dataset, *parameters, dataset, *parameters)).fetchall()


def zip_covers(scope):
    for path in scope:
        yield from zip(COVERS, covered(path))


def replace_findings_in(db, dataset, scope, items):
    """Replace the findings below `scope` (covering_paths) with `items`; keep the rest."""
    now = time.time()
    with db.transaction():
        for condition, parameters in zip_covers(scope):
            db.execute(f"DELETE FROM findings WHERE dataset = ? AND {condition.format(alias='findings')}",
                       (dataset, *parameters))
        db.connection.executemany(
            "INSERT OR REPLACE INTO findings (dataset, path, status, reason, found_at) VALUES (?,?,?,?,?)",
            ((dataset, item["path"], item["status"], item.get("reason"), now) for item in items))


def first_findings(db, dataset, limit):
    """Return (the first `limit` findings of `dataset` as report items, in path order,
    how many more there are): a report lists a bounded number, the table holds them all."""
    cursor = db.execute("SELECT path, status, reason FROM findings WHERE dataset=? ORDER BY path, status LIMIT ?",
                        (dataset, limit))
    items = [{"path": path, "status": status, **({"reason": reason} if reason else {})}
             for path, status, reason in cursor.fetchall()]
    total = db.execute("SELECT COUNT(*) FROM findings WHERE dataset=?", (dataset,)).fetchone()[0]
    return items, total - len(items)


def diff_listing(db, dataset, entries, batch=2000):
    """Stream the authority's listing `entries` into a temporary table and return the
    paths whose stored authority row it adds, removes or changes. The stored rows are
    left as they are until apply_listing; SQLite, not Python, compares the rows."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS listing (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
               "md5 TEXT, sha256 TEXT, etag TEXT, note TEXT) WITHOUT ROWID")
    insert = f"INSERT OR REPLACE INTO temp.listing VALUES ({', '.join('?' * len(LISTING_COLUMNS))})"
    with db.transaction():
        db.execute("DELETE FROM temp.listing")
        pending = []
        for entry in entries:
            pending.append(listing_row(entry))
            if len(pending) >= batch:
                db.connection.executemany(insert, pending)
                pending = []
        db.connection.executemany(insert, pending)
    return [row[0] for row in db.execute(LISTING_DIFF_SQL, (dataset, dataset)).fetchall()]


def listing_row(entry):
    """Return the LISTING_COLUMNS of an endpoint Entry, as entry_record stores them (a
    tuple, not its dict: this runs for every entry of the listing)."""
    digests = dict.fromkeys(("md5", "sha256", "etag"))
    if entry.checksum and entry.algorithm in digests:
        digests[entry.algorithm] = entry.checksum.lower()
    return (entry.path, entry.size, int(entry.mtime * 1e9) if entry.mtime is not None else None,
            digests["md5"], digests["sha256"], digests["etag"], entry.note)


def apply_listing(db, dataset, paths):
    """Make the stored authority rows of `paths` what diff_listing's listing says (a
    path it did not list loses its row), as replace_listing would have, then empty
    the temporary table."""
    columns = ", ".join(LISTING_COLUMNS[1:])
    with db.transaction():
        db.connection.executemany("DELETE FROM files WHERE dataset=? AND side=? AND path=?",
                                  ((dataset, AUTHORITY, path) for path in paths))
        db.connection.executemany(
            f"INSERT INTO files (dataset, side, path, parent, {columns}, dirty) "
            f"SELECT ?, ?, path, ?, {columns}, 0 FROM temp.listing WHERE path = ?",
            ((dataset, AUTHORITY, parent_of(path), path) for path in paths))
        db.execute("DELETE FROM temp.listing")
