"""Logging set-up, with secrets masked wherever a log line goes."""

import logging
import re
import sys

_secrets: set[str] = set()
# What must never reach a terminal raw, from a file name or anything else: C0 and C1
# controls and DEL (escape sequences, a newline forging a report line), the Unicode line
# separators and bidirectional overrides, and lone surrogates (bytes of a name that is
# not UTF-8).
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def register_secret(value):
    """Remember `value` so that no log line ever shows it. Short values are ignored:
    masking a 2-character string would garble ordinary text."""
    if value and len(value) >= 4:
        _secrets.add(value)


def mask(text):
    """Return `text` with every registered secret replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def escape_character(character):
    """The backslash escape of one UNPRINTABLE character, as bash's $'...' reads it."""
    code = ord(character)
    if character in NAMED_ESCAPES:
        return NAMED_ESCAPES[character]
    if code < 0x80:
        return f"\\{code:03o}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def escape_controls(text):
    """Return `text` with every UNPRINTABLE character replaced by its backslash escape
    (ESC becomes \\033, a newline \\n, U+202E \\u202e); other text is left as it is."""
    return UNPRINTABLE.sub(lambda found: escape_character(found.group()), text)


class MaskingFilter(logging.Filter):
    """Masks secrets and escapes control characters (a hostile file name in a log line
    must not act on the terminal)."""

    def filter(self, record):
        record.msg = escape_controls(mask(record.getMessage()))
        record.args = None
        return True


def plural(count, noun, plural_noun=None):
    """Return "1 snapshot", "2 snapshots" (or `plural_noun` when the plural is not noun + s)."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"


def human_bytes(count):
    """Return `count` bytes as people read them: "512 B", "1.5 MiB" ("-" for None)."""
    if count is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024


def setup_logging(verbosity):
    """Log to stderr: warnings only with -q, info by default, debug with -v."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger("syncer")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Third-party libraries stay quiet unless asked: their lines may carry URLs.
    logging.getLogger().setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
