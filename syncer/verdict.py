"""The one verdict: what a copy that was found is, given the copy that was expected
(the authority's listing, a snapshot's manifest, a known-good digest). Every action and
the endpoints' write checks ask `judge`. Pure: no I/O, nothing of syncer imported.
"""

from typing import NamedTuple

OK, CHANGED, MISSING_LOCAL, EXTRA_LOCAL, UNVERIFIABLE, CORRUPT = (
    "ok", "changed", "missing_local", "extra_local", "unverifiable", "corrupt")
# Compared in this order; a digest only one side holds says nothing.
ALGORITHMS = ("sha256", "md5", "etag")
# A note starting with this marks an entry the service lists but offers nothing to
# download (SmugMug without an original).
NOTHING_TO_DOWNLOAD = "nothing to download: "


class Copy(NamedTuple):
    """What is known of one copy of a file: `digests` maps "sha256", "md5" or "etag" to
    lowercase hex (None: not known); `note` says why it cannot be checked, or on the
    expected side what differs (a mirror's refs)."""

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


OK_VERDICT = Verdict(OK)


def judge(expected, found, there="at the authority"):
    """Return the Verdict on `found` given `expected` (either a Copy, or None when that
    side has no such file). `there` names the expected side in the reasons.

    Sizes that differ are a change. Otherwise every digest both sides hold is compared:
    one that differs is a change (`corrupt` when size and mtime are the same on both
    sides, which no edit leaves), all equal is ok. No digest in common is unverifiable,
    never ok.
    """
    if found is None:  # nothing to download: no action could bring it, so never a finding
        nothing = (expected.note or "").startswith(NOTHING_TO_DOWNLOAD)
        return Verdict(UNVERIFIABLE if nothing else MISSING_LOCAL, expected.note)
    if expected is None:
        return Verdict(EXTRA_LOCAL)
    if found.note:
        return Verdict(UNVERIFIABLE, found.note)
    if expected.size is not None and found.size is not None and expected.size != found.size:
        return Verdict(CHANGED, f"size {found.size} here, {expected.size} {there}")
    shared = False
    for name in ALGORITHMS:  # a plain loop: verify asks this once per file of the dataset
        want, have = expected.digests.get(name), found.digests.get(name)
        if want and have and want != have:
            if found.mtime_ns is not None and (found.size, found.mtime_ns) == (expected.size, expected.mtime_ns):
                return Verdict(CORRUPT, "content changed under an unchanged size and mtime (bit rot or a bad write)")
            return Verdict(CHANGED, expected.note or f"content differs ({name})")
        shared = shared or bool(want and have)
    if shared:
        return OK_VERDICT
    held = [name for name in ALGORITHMS if expected.digests.get(name)]
    return Verdict(UNVERIFIABLE, expected.note or (f"no checksum in common ({held[0]} {there})" if held
                                                   else f"no checksum {there}"))
