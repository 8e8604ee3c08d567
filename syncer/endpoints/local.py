"""A directory on this machine (a NAS mount, a second disk) as the authoritative copy."""

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from syncer.endpoints.base import Capabilities, Entry
from syncer.errors import EndpointError
from syncer.index.hashing import hash_file
from syncer.verdict import CHANGED, Copy, judge


class LocalEndpoint:
    capabilities = Capabilities(checksum="sha256")

    def __init__(self, root):
        self.root = Path(root)
        # Naming the root lets verify index it with the hash cache rather than list it: a
        # warm verify of a local authority then reads nothing that did not change.
        self.capabilities = replace(LocalEndpoint.capabilities, local_root=self.root)

    def describe(self):
        return f"local:{self.root}"

    def list_entries(self):
        """Yield every regular file below the root with its SHA-256 (hashed here:
        a plain directory has no checksum of its own)."""
        if not self.root.is_dir():
            raise EndpointError(f"{self.describe()}: directory does not exist or is not mounted", permanent=True)
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories.sort()
            for name in sorted(files):
                absolute = os.path.join(directory, name)
                if os.path.islink(absolute) or not os.path.isfile(absolute):
                    continue
                relative = os.path.relpath(absolute, self.root).replace(os.sep, "/")
                hashed = hash_file(absolute, ("sha256",))
                yield Entry(relative, hashed.size, hashed.digests["sha256"], "sha256",
                            hashed.mtime_ns / 1e9, ref=absolute)

    def open_entry(self, entry):
        try:
            return open(self.root / entry.path, "rb")
        except OSError as error:
            raise EndpointError(f"{self.describe()}: cannot read {entry.path}: {error.strerror}",
                                permanent=isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)))

    def write_entry(self, path, source, digests):
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".syncer-")
        try:
            with os.fdopen(descriptor, "wb") as out, open(source, "rb") as data:
                shutil.copyfileobj(data, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            hashed = hash_file(temporary, ("sha256",))
            if judge(Copy(digests=digests), Copy(digests=hashed.digests)).status == CHANGED:
                raise EndpointError(f"{self.describe()}: {path} was corrupted while writing", permanent=True)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return Entry(path, hashed.size, hashed.digests["sha256"], "sha256", hashed.mtime_ns / 1e9)

    def delete_entry(self, path):
        try:
            (self.root / path).unlink()
        except FileNotFoundError:
            pass
