"""The one place that runs restic.

run_restic() starts restic through the process door (syncer.process: the command
logged with secrets masked, stopped on interrupt, stderr streamed into logging),
parses --json output, and maps restic's exit status to the project's errors from one
table. restic 0.14 reports a missing repository, a wrong password and a lock
conflict as exit 1 with a message; newer releases have dedicated codes. Both end up
in the same exceptions.
"""

import json
import logging
import os
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from syncer.errors import ResticError
from syncer.log import mask, register_secret
from syncer.process import TimedOut, run_process
from syncer.restic.versions import (
    DEDICATED_EXIT_CODES,
    dedicated_exit_meaning,
    describe_fallback,
    has_feature,
    parse_version,
)

log = logging.getLogger("syncer.restic")
VERSION_TIMEOUT_SECONDS = 30


class ResticFailed(ResticError):
    """restic exited with a fatal error (exit 1 or an unknown status)."""


class RepositoryMissing(ResticError):
    """There is no restic repository at the address (restic 0.17+: exit 10)."""


class RepositoryUnreachable(ResticError):
    """The repository's server cannot be reached (connection refused, DNS, timeout):
    it may well exist."""


class RepositoryLocked(ResticError):
    """Another restic process holds a conflicting lock (restic 0.17+: exit 11)."""


class WrongPassword(ResticError):
    """The password does not open the repository (restic 0.17+: exit 12)."""


class ResticInterrupted(ResticError):
    """restic was interrupted (exit 130)."""


# restic's exit status -> what it means. "partial" (3: some source files could not be
# read) is not an exception: the snapshot exists, and the caller warns with the list.
# 10, 11 and 12 mean something only from restic 0.17 on (restic.versions says).
EXIT_STATUSES = {
    0: "ok",
    1: "fatal",
    3: "partial",
    130: "interrupted",
}
# restic 0.14 says these on stderr with exit 1; checked in order.
STDERR_HINTS = (
    ("wrong password", "wrong_password"),
    ("repository does not exist", "no_repository"),
    ("unable to open config file", "no_repository"),
    ("already locked", "locked"),
)
# A repository that cannot be opened because its server did not answer is unreachable,
# not missing: restic 0.14 says "unable to open config file" for both, with the
# network error (Go's wording) in the same line.
NETWORK_ERRORS = ("connection refused", "no such host", "i/o timeout", "network is unreachable",
                  "no route to host", "connection reset", "tls handshake timeout", "server misbehaving",
                  "context deadline exceeded", "temporary failure in name resolution")
# A meaning 0.14 gives only in a message -> the feature that gives it an exit code.
HINTED_FEATURES = {meaning: feature for meaning, feature in DEDICATED_EXIT_CODES.values()}
ERRORS = {
    "fatal": ResticFailed,
    "no_repository": RepositoryMissing,
    "unreachable": RepositoryUnreachable,
    "locked": RepositoryLocked,
    "wrong_password": WrongPassword,
    "interrupted": ResticInterrupted,
}


@dataclass(frozen=True)
class ResticContext:
    """Where a repository is and how to open it. The password stays in its file."""

    repository: str
    password_file: Path
    cache_dir: Path
    env: dict = field(default_factory=dict, repr=False)  # from offsite.env_file
    binary: str = "restic"
    label: str = ""  # the policy file and section, for messages
    timeout: float | None = None  # offsite.timeout: the longest one restic run may take

    @property
    def display(self):
        """The repository address as it may be shown or stored: no embedded password."""
        return mask(mask_url(self.repository))

    def environment(self):
        """restic's environment: the ambient one minus any RESTIC_*/AWS_* settings,
        plus this repository's. Secrets travel here, never in argv."""
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("RESTIC_", "AWS_", "B2_", "AZURE_", "GOOGLE_"))}
        environment.update(self.env)
        environment.update(RESTIC_REPOSITORY=self.repository, RESTIC_PASSWORD_FILE=str(self.password_file),
                           RESTIC_CACHE_DIR=str(self.cache_dir))
        return environment


@dataclass
class ResticResult:
    exit_status: int
    messages: list  # parsed JSON documents from stdout (status lines excluded)
    stdout: str  # stdout text that was not JSON
    stderr: list  # stderr lines
    errors: list  # JSON error messages restic wrote to stderr (unreadable files)
    peak_rss: int = 0  # restic's peak resident memory, bytes

    @property
    def partial(self):
        return self.exit_status == 3


def classify_exit(exit_status, stderr_text, version=None):
    """Return what restic's `exit_status` means ("ok", "partial", "fatal",
    "no_repository", "unreachable", "locked", "wrong_password", "interrupted") for
    restic `version`, reading restic 0.14's messages when it only says exit 1. An
    unknown status is "fatal"."""
    kind = dedicated_exit_meaning(exit_status, version) or EXIT_STATUSES.get(exit_status, "fatal")
    lowered = stderr_text.lower()
    if kind == "fatal":
        for hint, meaning in STDERR_HINTS:
            if hint in lowered:
                kind = meaning
                break
    if kind == "no_repository" and any(error in lowered for error in NETWORK_ERRORS):
        return "unreachable"
    return kind


def describe_failure(kind, context, command, exit_status, stderr_lines):
    """Return the one-line message for a failed restic command."""
    where = f"offsite repository {context.display}"
    if kind == "wrong_password":
        return f"{where}: wrong password (the key in {context.password_file} does not open it)"
    if kind == "no_repository":
        return f"{where} does not exist: missing or not mounted?"
    if kind == "unreachable":
        reason = next((error for error in NETWORK_ERRORS if any(error in line.lower() for line in stderr_lines)),
                      "no answer")
        return f"{where} is unreachable ({reason}): a network or server problem, not a missing repository"
    if kind == "locked":
        holder = next((line.strip() for line in stderr_lines if "locked" in line.lower()), "")
        return f"{where} is locked by another restic process: {holder}"
    if kind == "interrupted":
        return f"restic {command} was interrupted"
    fatal = [line.strip() for line in stderr_lines if line.strip().lower().startswith(("fatal", "error"))]
    detail = fatal[-1] if fatal else (stderr_lines[-1].strip() if stderr_lines else "no message")
    return f"restic {command} on {where} failed (exit {exit_status}): {detail}"


def masked_command(context, arguments):
    """The command line as it may be logged: repository address with any
    user:password@ removed, and every registered secret masked."""
    return mask(f"RESTIC_REPOSITORY={mask_url(context.repository)} {shlex.join([context.binary, *arguments])}")


def mask_url(address):
    """Hide credentials embedded in a repository URL (rest:https://user:pass@host/)."""
    scheme, separator, rest = address.partition("://")
    if separator and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return address


def run_restic(context, arguments, *, json_output=False, stdout_file=None, on_status=None):
    """Run restic with `arguments` (from syncer.restic.argv) against `context`.

    With `json_output`, parse each stdout line that holds JSON; restic's "status"
    messages go to `on_status` instead of the result. With `stdout_file` (an open
    binary file), restic's stdout is written there (for `restic dump`).
    Return a ResticResult for exit 0 and 3. Raise WrongPassword, RepositoryMissing,
    RepositoryUnreachable, RepositoryLocked, ResticInterrupted or ResticFailed otherwise.
    """
    register_secret(read_first_line(context.password_file))
    command = arguments[0]
    stderr_lines, errors, messages, text = [], [], [], []

    def take_output(line):
        document = parse_json_line(line) if json_output else None
        if document is None:
            text.append(line)
        elif isinstance(document, dict) and document.get("message_type") == "status":
            if on_status:
                on_status(document)
        else:
            messages.append(document)

    usage = {}
    try:
        exit_status = start_restic([context.binary, *arguments], take_output,
                                   lambda line: take_stderr(line, stderr_lines, errors), stdout_file=stdout_file,
                                   environment=context.environment(), display=masked_command(context, arguments),
                                   usage=usage, timeout=context.timeout)
    except TimedOut:
        raise RepositoryUnreachable(mask(f"restic {command} on offsite repository {context.display} failed: still "
                                         f"running after {context.label}.timeout ({context.timeout:.0f}s), so syncer "
                                         f"stopped it: a dead uplink or a stuck server?")) from None
    version = None if exit_status in EXIT_STATUSES else installed_version(context.binary)
    kind = classify_exit(exit_status, "\n".join(stderr_lines), version)
    if kind in ("ok", "partial"):
        return ResticResult(exit_status, messages, "".join(text), stderr_lines, errors, usage.get("peak_rss", 0))
    if exit_status == 1 and kind in HINTED_FEATURES:  # told from the message: say why at -v
        say_if_missing(HINTED_FEATURES[kind], context.binary)
    failure = ERRORS[kind](mask(describe_failure(kind, context, command, exit_status, stderr_lines)), exit_status)
    failure.messages = messages  # what restic said on stdout before failing (check --json's summary)
    failure.stderr = stderr_lines
    raise failure


def restic_version(binary="restic"):
    """Return what `restic version` prints. Raise ResticError when restic cannot be run."""
    output, stderr_lines, errors = [], [], []
    try:
        start_restic([binary, "version"], output.append, lambda line: take_stderr(line, stderr_lines, errors),
                     timeout=VERSION_TIMEOUT_SECONDS)
    except TimedOut as error:
        raise ResticError(f"restic version could not be run: {error}")
    return "".join(output)


def start_restic(argv, on_output, on_errors, **options):
    """Run restic through the process door; return its exit status. Raise ResticError
    when it cannot be started."""
    try:
        return run_process(argv, on_output=on_output, on_errors=on_errors, logger=log, own_group=False, **options)
    except FileNotFoundError:
        if argv[0] == "restic":
            raise ResticError("the restic binary was not found on PATH (apt-get install -y restic)")
        raise ResticError(f"the restic binary {argv[0]} (syncer.yaml restic: or SYNCER_RESTIC) was not found")
    except OSError as error:
        raise ResticError(f"restic could not be started: {error.strerror}")


def take_stderr(line, lines, errors):
    """Log one line of restic's stderr; keep it in `lines`, or in `errors` when it is
    one of restic's JSON error messages."""
    line = line.rstrip("\n")
    document = parse_json_line(line)
    if isinstance(document, dict) and document.get("message_type") == "error":
        errors.append(document)
        log.warning("restic: %s: %s", document.get("item") or "?", describe_error(document))
        return
    if isinstance(document, dict) and document.get("message_type") == "exit_error":  # --json's "Fatal: ..."
        line = str(document.get("message") or "")
    lines.append(line)
    if line.strip():
        level = logging.WARNING if line.lower().startswith(("warning", "error")) else logging.DEBUG
        log.log(level, "restic: %s", mask(line))


def installed_version(binary):
    """The version of the restic at `binary`, or None when it cannot be told."""
    try:
        return detect_version(binary)
    except ResticError:
        return None


def describe_error(document):
    """Render restic's JSON error message (`{"error": {"Op", "Path", "Err"}, ...}`)."""
    error = document.get("error")
    if isinstance(error, dict):
        number = error.get("Err")
        reason = os.strerror(number) if isinstance(number, int) else str(number)
        return f"{error.get('Op', 'read')}: {reason}"
    return str(error or document.get("message") or "error")


def parse_json_line(line):
    stripped = line.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def read_first_line(path):
    """The password restic will read (its first line), so logging can mask it."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readline().rstrip("\r\n")
    except OSError:
        return ""


@lru_cache(maxsize=8)
def detect_version(binary="restic"):
    """Return the version tuple of the restic at `binary`. Raise ResticError when it
    cannot be run."""
    return parse_version(restic_version(binary))


def supports(feature, binary="restic"):
    """Return whether the restic at `binary` has `feature` (a key of versions.FEATURES).
    When it lacks it, say once (at -v) what syncer does instead. Raise ResticError when
    restic cannot be run."""
    version = detect_version(binary)
    if has_feature(version, feature):
        return True
    if (binary, feature) not in FALLBACKS_SAID:
        FALLBACKS_SAID.add((binary, feature))
        log.debug("%s", describe_fallback(version, feature))
    return False


def say_if_missing(feature, binary):
    """supports(), for a message only: a restic whose version cannot be told says nothing."""
    try:
        supports(feature, binary)
    except ResticError:
        pass


FALLBACKS_SAID = set()
