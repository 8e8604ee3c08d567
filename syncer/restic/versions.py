"""Which restic features this machine's restic has: one table, one lookup.

Debian 12 ships restic 0.14, Debian 13 0.18; newer releases add flags and exit codes
that syncer uses when present and emulates (or goes without) when not, saying so at -v.
Nothing else in syncer compares versions.
"""

import re

from syncer.errors import ResticError

# feature -> the first restic release that has it.
FEATURES = {
    "restore_json": (0, 17, 0),          # restore --json reports progress and a summary
    "restore_include_file": (0, 17, 0),  # restore --include-file instead of many --include
    "exit_codes_10_11": (0, 17, 0),      # exit 10: no repository, 11: locked (instead of exit 1)
    "exit_code_12": (0, 17, 1),          # exit 12: wrong password (instead of exit 1)
    "retry_lock": (0, 16, 0),            # --retry-lock: wait for a lock held by another run
    "skip_if_unchanged": (0, 17, 0),     # backup --skip-if-unchanged: no snapshot when nothing changed
    "check_json": (0, 18, 0),            # check --json: a summary naming the broken packs
    "copy_from_repo": (0, 14, 0),        # copy/init name the source --from-repo (RESTIC_FROM_*), not --repo2
}
# What syncer does on a restic without the feature: said once at -v.
FALLBACKS = {
    "restore_json": "syncer measures the restore itself",
    "restore_include_file": "the --include patterns are passed in batches",
    "exit_codes_10_11": "a missing or locked repository is told from restic's message",
    "exit_code_12": "a wrong password is told from restic's message",
    "retry_lock": "a command meeting another run's lock fails at once (a stale lock is still cleared)",
    "skip_if_unchanged": "an unchanged dataset gets a new snapshot anyway",
    "check_json": "damaged packs are read from check's messages",
    "copy_from_repo": "copy and init name the source repository with --repo2",
}
# What restic's dedicated exit codes mean, and the feature that gives each its meaning:
# older releases exit 1 for all three and say which in a message.
DEDICATED_EXIT_CODES = {10: ("no_repository", "exit_codes_10_11"), 11: ("locked", "exit_codes_10_11"),
                        12: ("wrong_password", "exit_code_12")}
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
    meaning, feature = DEDICATED_EXIT_CODES.get(exit_status, (None, None))
    if meaning and version is not None and not has_feature(version, feature):
        return None
    return meaning


def describe_fallback(version, feature):
    """The line said at -v when restic `version` lacks `feature`."""
    flag = ".".join(str(part) for part in FEATURES[feature])
    return (f"restic {'.'.join(str(part) for part in version)} lacks {feature.replace('_', ' ')} "
            f"(restic {flag}): {FALLBACKS[feature]}")
