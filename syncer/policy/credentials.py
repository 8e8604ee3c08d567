"""Credentials files: KEY=VALUE lines, readable by their owner only."""

import os
import stat
from contextlib import contextmanager
from pathlib import Path

from syncer.errors import CredentialError, OperationalError
from syncer.log import register_secret


def resolve_credentials_path(name, policy_dir):
    """Return the path a credentials name refers to.

    A relative name is looked up in $CREDENTIALS_DIRECTORY when systemd set it
    (LoadCredential=), else beside the policy file.
    """
    path = Path(name)
    if path.is_absolute():
        return path
    credentials_directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials_directory:
        return Path(credentials_directory) / path
    return Path(policy_dir) / path


def check_credentials_file(path):
    """Return a problem with the file at `path` (missing, not a file, too open), or None."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"credentials file {path} does not exist"
    except PermissionError:
        return f"credentials file {path} cannot be read (permission denied)"
    if not stat.S_ISREG(info.st_mode):
        return f"credentials file {path} is not a regular file"
    if info.st_mode & 0o077:
        return (f"credentials file {path} is readable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}")
    return None


def credentials_error(path, problem):
    """Return the error for a `problem` with the file at `path`: a file that is not there
    is this machine's failure (a disk not mounted, a file not copied yet: exit 3), one
    that is there but unusable is the user's to fix (exit 2)."""
    return CredentialError(problem) if os.path.lexists(path) else OperationalError(problem)


def read_credentials(path, required=()):
    """Read KEY=VALUE lines from `path` and return them as a dict.

    Every value is registered as a secret so that logging masks it. Raise
    CredentialError if the file is missing, too open, malformed or lacks a key in
    `required`. Error text names keys and the file, never values.
    """
    problem = check_credentials_file(path)
    if problem:
        raise credentials_error(path, problem)
    values = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialError(f"credentials file {path} cannot be read: {error.__class__.__name__}")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, separator, value = line.partition("=")
        if not separator or not key.strip():
            raise CredentialError(f"credentials file {path}: line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
        register_secret(value)
    missing = [key for key in required if not values.get(key)]
    if missing:
        raise CredentialError(f"credentials file {path} lacks {', '.join(missing)}")
    return values


def merge_credentials(text, values):
    """Return the credentials file `text` with `values` set: the line of a key given is
    replaced where it stands, a new key is appended, every other line (comments, other
    keys) is kept as it was."""
    remaining = dict(values)
    lines = []
    for line in text.splitlines():
        body = line.strip()
        body = body[len("export "):] if body.startswith("export ") else body
        key, separator, _ = body.partition("=")
        if separator and not body.startswith("#") and key.strip() in remaining:
            lines.append(f"{key.strip()}={remaining.pop(key.strip())}")
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in remaining.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def staged_credentials(path, values):
    """Stage the credentials file at `path` with `values` set (merge_credentials) in a
    temporary file beside it, mode 600, fsynced; yield the temporary file's path. When
    the block ends without an error the staged file replaces `path` in one rename (the
    folder fsynced); otherwise it is removed and `path` is left exactly as it was.
    Raise CredentialError for a value that cannot be one line, OperationalError when the
    folder cannot be written."""
    from syncer.fsio import fsync_folder, temporary_name

    path = Path(path)
    for key, value in values.items():
        if not value or any(char in value for char in "\r\n\x00"):
            raise CredentialError(f"the value given for {key} is empty or not one line")
        register_secret(value)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staged = path.parent / temporary_name()
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except (OSError, UnicodeDecodeError) as error:
        raise OperationalError(f"cannot write the credentials file {path}: {getattr(error, 'strerror', error)}")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(merge_credentials(text, values))
            out.flush()
            os.fchmod(out.fileno(), 0o600)
            os.fsync(out.fileno())
        yield staged
        os.replace(staged, path)
        fsync_folder(path.parent)
    finally:
        staged.unlink(missing_ok=True)
