"""Logging set-up, with secrets masked wherever a log line goes."""

import logging
import sys

_secrets: set[str] = set()


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


class MaskingFilter(logging.Filter):
    def filter(self, record):
        record.msg = mask(record.getMessage())
        record.args = None
        return True


def plural(count, noun, plural_noun=None):
    """Return "1 snapshot", "2 snapshots" (or `plural_noun` when the plural is not noun + s)."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"


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
