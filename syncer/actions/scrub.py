"""scrub: re-read a slice of each dataset and catch bit rot.

A file whose content changed while its size and mtime did not is corrupt: storage
faults do not touch mtime, legitimate edits do. ctime is no witness (chmod, chown
and attribute restores move it without touching content). Each run reads the
longest-unconfirmed files first, so repeated scrubs cover the whole dataset.
"""

import logging
import os
import stat
import time

from syncer.actions.common import for_each_dataset, recorded_run, require_on_this_machine
from syncer.actions.repair import repair_dataset
from syncer.actions.repair_offsite import snapshot_copies
from syncer.errors import EXIT_FINDINGS, EXIT_OK, UsageError
from syncer.index import integrity
from syncer.index.hashing import FileChanged, Throttle, hash_file
from syncer.index.lock import dataset_lock
from syncer.verdict import CORRUPT, Copy, judge

log = logging.getLogger("syncer.scrub")
DEFAULT_FRACTION = 0.05
THIRTY_DAYS = 30 * 86400


def parse_fraction(text):
    """Return a fraction in (0, 1] from "5%" or "0.05". Raise UsageError otherwise."""
    text = str(text).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"--fraction {text!r} is not a share like 5% or 0.05")
    if not 0 < value <= 1:
        raise UsageError(f"--fraction {text!r} must be more than 0% and at most 100%")
    return value


def run_scrub(policies, db, fraction=None, rate_mib_s=None):
    """Scrub each dataset. Return the report: exit 1 when corruption is found."""
    def work(policy):
        share, rate = policy.scrub.fraction, policy.scrub.rate_mib_s
        rate = rate_mib_s if rate_mib_s is not None else rate
        with dataset_lock(db.state_dir, policy.name):
            result = scrub_dataset(policy, db, parse_fraction(fraction or share or DEFAULT_FRACTION), rate)
            if result["counts"]["corrupt"] and policy.repair == "auto":
                result["repair"] = repair_now(policy, db, rate)
        return result

    return for_each_dataset(policies, work, action="scrub")


def repair_now(policy, db, rate):
    """`repair: auto`: repair what this scrub found, as its own recorded run."""
    log.info("%s: repair: auto, so repairing what the scrub found", policy.name)
    return repair_dataset(policy, db, rate_mib_s=rate, offsite_source=snapshot_copies)


def scrub_dataset(policy, db, fraction, rate_mib_s=None):
    with recorded_run(db, policy.name, "scrub") as outcome:
        require_on_this_machine(policy, "path")
        integrity.ensure_schema(db)
        _, total_bytes, _ = db.totals(policy.name)
        budget = max(1, int(total_bytes * fraction))
        throttle = Throttle(rate_mib_s)
        counts = {"confirmed": 0, "corrupt": 0, "edited": 0, "missing": 0, "unreadable": 0}
        items, read_bytes = [], 0
        # Streamed, not listed: the ORDER BY has no index, so SQLite sorts the rows first (spilling
        # to its temp files past its cache) and the confirmations below cannot reorder what comes.
        for path, size, mtime_ns, md5, sha256, _ in integrity.oldest_confirmed(db, policy.name):
            if read_bytes >= budget:
                break
            absolute = policy.path / path
            try:
                info = os.lstat(absolute)
            except FileNotFoundError:
                counts["missing"] += 1  # verify reports it; repair can restore it
                continue
            # a symlink put in the file's place is a change the next verify reports, never
            # a file read outside the dataset (whose other content would look like rot)
            if not stat.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
                counts["edited"] += 1  # a legitimate change: the next verify re-hashes it
                continue
            expected = {name: digest for name, digest in (("md5", md5), ("sha256", sha256)) if digest}
            try:
                hashed = hash_file(absolute, tuple(expected), on_chunk=throttle.consume, seen=info)
            except FileChanged:
                counts["edited"] += 1  # written to while we read it: an edit, not rot
                continue
            except OSError as error:
                counts["unreadable"] += 1
                items.append({"path": path, "status": "unreadable", "reason": error.strerror})
                continue
            read_bytes += hashed.size
            verdict = judge(Copy(size, expected, mtime_ns), Copy(hashed.size, hashed.digests, hashed.mtime_ns))
            if verdict.ok:
                counts["confirmed"] += 1
                integrity.confirm(db, policy.name, path)
                continue
            if verdict.status != CORRUPT:
                counts["edited"] += 1
                continue
            counts["corrupt"] += 1
            log.error("%s: %s is corrupt: its content changed but its size and mtime did not", policy.name, path)
            integrity.record_corruption(db, policy.name, path, size, mtime_ns, expected, hashed.digests)
            items.append({"path": path, "status": "corrupt", "reason": verdict.reason})
        coverage = integrity.confirmed_share_since(db, policy.name, time.time() - THIRTY_DAYS)
        if not total_bytes:
            log.warning("%s: nothing indexed yet; run `syncer verify %s` first", policy.name, policy.name)
        outcome.update(name=policy.name, counts=counts, items=items, bytes_read=read_bytes,
                       bytes_total=total_bytes, confirmed_share_30d=coverage,
                       exit_code=EXIT_FINDINGS if counts["corrupt"] else EXIT_OK)
        log.info("%s: scrub read %.1f MiB of %.1f MiB: %s", policy.name, read_bytes / 2**20, total_bytes / 2**20,
                 ", ".join(f"{v} {k}" for k, v in counts.items()))
    return dict(outcome)

