"""Where `syncer check` is in its cycle of --read-data-subset=n/t slices, per repository."""

COLUMNS = ("slices", "next_slice", "cycle_started", "last_full")


def read_data_position(db, repository):
    """Return {"slices", "next_slice", "cycle_started", "last_full"} of `repository`, or None
    before its first slice."""
    row = db.execute(f"SELECT {', '.join(COLUMNS)} FROM read_data WHERE repository=?", (repository,)).fetchone()
    return dict(zip(COLUMNS, row)) if row else None


def next_slice(position, slices):
    """The slice (1..slices) the next check reads: the first of a new cycle when there is
    none yet or the number of slices changed."""
    if position is None or position["slices"] != slices:
        return 1
    return min(position["next_slice"], slices)


def record_slice(db, repository, slices, done, now):
    """Record that slice `done` of `slices` was read without an error at `now`: the next
    check reads the next one; the last one ends the cycle (every pack was read)."""
    position = read_data_position(db, repository)
    same_cycle = position is not None and position["slices"] == slices and done != 1
    started = position["cycle_started"] if same_cycle else now
    last_full = position["last_full"] if position else None
    if done >= slices:
        last_full, following = now, 1
    else:
        following = done + 1
    db.execute("INSERT INTO read_data (repository, slices, next_slice, cycle_started, last_full) VALUES (?,?,?,?,?) "
               "ON CONFLICT (repository) DO UPDATE SET slices=excluded.slices, next_slice=excluded.next_slice, "
               "cycle_started=excluded.cycle_started, last_full=excluded.last_full",
               (repository, slices, following, started, last_full))
