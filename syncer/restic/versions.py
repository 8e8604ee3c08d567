"""Which restic features this machine's restic has: one table, one lookup.

Debian ships restic 0.14; newer releases add flags and exit codes that syncer uses
when present and emulates when not. Nothing else in syncer compares versions.
"""

import re
from functools import lru_cache

from syncer.errors import ResticError
from syncer.restic.runner import restic_version

# feature -> the first restic release that has it
# (0.14 lacks both: syncer then measures the restore itself and batches --include.
# restic 0.17's dedicated exit codes 10/11/12 need no entry: the runner's table reads
# them, and reads 0.14's messages for the same cases.)
FEATURES = {
    "restore_json": (0, 17, 0),          # restore --json reports progress and a summary
    "restore_include_file": (0, 17, 0),  # restore --include-file instead of many --include
}
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


@lru_cache(maxsize=8)
def detect_version(binary="restic"):
    """Return the version tuple of the restic at `binary`. Raise ResticError when it
    cannot be run."""
    return parse_version(restic_version(binary))


def supports(feature, binary="restic"):
    """Return whether the installed restic has `feature`."""
    return has_feature(detect_version(binary), feature)
