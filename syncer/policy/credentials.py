"""Credentials files: KEY=VALUE lines, readable by their owner only."""

import os
import stat
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
