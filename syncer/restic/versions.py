"""Which restic features this machine's restic has: one table, one lookup.

Debian ships restic 0.14; newer releases add flags and exit codes that syncer uses
when present and emulates when not. Nothing else in syncer compares versions.
"""

import re

from syncer.errors import ResticError

# feature -> the first restic release that has it
# (0.14 lacks all but copy_from_repo: syncer then measures the restore itself, batches --include, and
# reads restic's messages where 0.17 has an exit code of its own.)
FEATURES = {
    "restore_json": (0, 17, 0),          # restore --json reports progress and a summary
    "restore_include_file": (0, 17, 0),  # restore --include-file instead of many --include
    "dedicated_exit_codes": (0, 17, 0),  # DEDICATED_EXIT_CODES below instead of exit 1
    "copy_from_repo": (0, 14, 0),        # copy/init name the source --from-repo (RESTIC_FROM_*), not --repo2
}
# What restic's dedicated exit codes mean, from the release that has "dedicated_exit_codes"
# on; older releases exit 1 for all three and say which in a message.
DEDICATED_EXIT_CODES = {10: "no_repository", 11: "locked", 12: "wrong_password"}
VERSION_PATTERN = re.compile(r"restic (\d+)\.(\d+)\.(\d+)")


def parse_version(text):
    """Given the output of `restic version`, return (major, minor, patch). Raise
    ResticError if it does not look like restic's."""
    match = VERSION_PATTERN.search(text or "")
    if not match:
        raise ResticError(f"cannot tell the restic version from {text.strip()[:80]!r}")
    return tuple(int(part) for part in match.groups())


def has_feature(version, feature):
    """Return whether restic `version` (a tuple) has `feature` (a key of FEATURES)."""
    return tuple(version) >= FEATURES[feature]


def dedicated_exit_meaning(exit_status, version):
    """Return what `exit_status` means for restic `version` (a tuple) when that release
    gives it a dedicated meaning (DEDICATED_EXIT_CODES), else None: before 0.17 these
    numbers mean nothing. A version that could not be told (None) trusts the number."""
    meaning = DEDICATED_EXIT_CODES.get(exit_status)
    if meaning and version is not None and not has_feature(version, "dedicated_exit_codes"):
        return None
    return meaning

