"""Helpers for the offsite tests: a dataset with a policy pointing at a restic
repository (local or on the loopback S3 server), and restic run directly."""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import require_tool, run_syncer, write_policy, write_secret, write_tree

PASSWORD = "correct-horse-battery-9f3k"


@dataclass
class Dataset:
    name: str
    root: Path  # the test's folder
    data: Path
    policies: Path
    state: Path
    repository: str
    password_file: Path
    env_file: Path | None = None

    def syncer(self, *arguments, **options):
        return run_syncer(*arguments, policies=self.policies, state=self.state, **options)

    def restic(self, *arguments):
        """Run restic itself against the repository (to inspect what syncer did)."""
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("RESTIC_", "AWS_"))}
        environment.update(RESTIC_REPOSITORY=self.repository, RESTIC_PASSWORD_FILE=str(self.password_file),
                           RESTIC_CACHE_DIR=str(self.root / "restic-cache"))
        if self.env_file:
            for line in self.env_file.read_text().splitlines():
                key, _, value = line.partition("=")
                environment[key] = value
        return subprocess.run([require_tool("restic"), *arguments], capture_output=True, text=True,
                              env=environment, timeout=120)


def make_dataset(root, files, name="photos", repository=None, retention=None, env_text=None, extra=None,
                 policies=None, exclude=None, authority=None):
    """Write `files` as a dataset with a local authority (itself, or the folder
    `authority`) and an offsite section; return a Dataset."""
    require_tool("restic")
    root = Path(root)
    data = write_tree(root / f"data-{name}", files)
    password_file = write_secret(root / "secrets" / "restic.pass", PASSWORD + "\n")
    offsite = {"repository": repository or str(root / "repo"), "password_file": str(password_file),
               "manifest_root": str(root / "manifest-root")}
    env_file = None
    if env_text:
        env_file = write_secret(root / "secrets" / "offsite.env", env_text)
        offsite["env_file"] = str(env_file)
    if retention:
        offsite["retention"] = retention
    offsite.update(extra or {})
    policies = policies or root / "policies"
    document = {"path": str(data), "authority": {"type": "local", "path": str(authority or data)},
                "offsite": offsite}
    if exclude:
        document["exclude"] = exclude
    write_policy(policies, name, document)
    return Dataset(name, root, data, policies, root / "state", offsite["repository"], password_file, env_file)


def tree_bytes(root):
    """{relative path: bytes} of every regular file below `root`."""
    root = Path(root)
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and not path.is_symlink()}
