"""The one verdict: what it means when a copy that was found is compared with the copy
that was expected (the authority's listing, a snapshot's manifest, a known-good digest).

Every action asks `judge`, so "same", "differs" and "cannot tell" mean the same thing
in verify, pull, restore, drill, repair, scrub and the endpoints' write checks. Pure:
no I/O, nothing of syncer imported.
"""

from typing import NamedTuple

OK, CHANGED, MISSING_LOCAL, EXTRA_LOCAL, UNVERIFIABLE, CORRUPT = (
    "ok", "changed", "missing_local", "extra_local", "unverifiable", "corrupt")
# Compared in this order; a digest only one side holds says nothing.
ALGORITHMS = ("sha256", "md5", "etag")
# A note starting with this marks an entry the service lists but offers nothing to
# download (SmugMug without an original): it cannot be fetched, so a missing local copy
# is unverifiable, never a finding that no action could clear.
NOTHING_TO_DOWNLOAD = "nothing to download: "


class Copy(NamedTuple):
    """What is known of one copy of a file. `digests` maps an algorithm ("sha256",
    "md5", or "etag" for an S3 multipart ETag) to lowercase hex; a missing or None value
    is not known. `note` says why the copy cannot be checked (unreadable, no checksum
    upstream); on the expected side it also explains a difference (a mirror's refs)."""

    size: int | None = None
    digests: dict = {}
    mtime_ns: int | None = None
    note: str | None = None


class Verdict(NamedTuple):
    status: str
    reason: str | None = None

    @property
    def ok(self):
        return self.status == OK


def judge(expected, found, here="here", there="at the authority"):
    """Return the Verdict on `found` given `expected` (either a Copy, or None when that
    side has no such file). `here` and `there` name the two sides in the reasons.

    Sizes that differ are a change. Otherwise every digest both sides hold is compared:
    one that differs is a change (`corrupt` when size and mtime are the same on both
    sides, which no edit leaves), all equal is ok. No digest in common is unverifiable,
    never ok.
    """
    if found is None:
        if expected.note and expected.note.startswith(NOTHING_TO_DOWNLOAD):
            return Verdict(UNVERIFIABLE, expected.note)
        return Verdict(MISSING_LOCAL, expected.note)
    if expected is None:
        return Verdict(EXTRA_LOCAL)
    if found.note:
        return Verdict(UNVERIFIABLE, found.note)
    if expected.size is not None and found.size is not None and expected.size != found.size:
        return Verdict(CHANGED, f"size {found.size} {here}, {expected.size} {there}")
    compared = None
    for algorithm in ALGORITHMS:
        want, have = expected.digests.get(algorithm), found.digests.get(algorithm)
        if want and have:
            if want != have:
                if found.mtime_ns is not None and (found.size, found.mtime_ns) == (expected.size, expected.mtime_ns):
                    return Verdict(CORRUPT, "content changed under an unchanged size and mtime "
                                            "(bit rot or a bad write)")
                return Verdict(CHANGED, expected.note or f"content differs ({algorithm})")
            compared = algorithm
    if compared:
        return Verdict(OK)
    if expected.note:
        return Verdict(UNVERIFIABLE, expected.note)
    wanted = [algorithm for algorithm in ALGORITHMS if expected.digests.get(algorithm)]
    return Verdict(UNVERIFIABLE, f"no checksum in common ({wanted[0]} {there})" if wanted else f"no checksum {there}")
