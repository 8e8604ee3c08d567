"""A directory on this machine (a NAS mount, a second disk) as the authoritative copy."""

import os
from dataclasses import replace
from pathlib import Path

from syncer.endpoints.base import Capabilities, Entry
from syncer.errors import EndpointError
from syncer.fsio import DigestMismatch, UnsafePath, remove_file, write_file
from syncer.index.hashing import hash_file


class LocalEndpoint:
    capabilities = Capabilities(checksum="sha256")

    def __init__(self, root):
        self.root = Path(root)
        # Naming the root lets verify index it with the hash cache rather than list it: a
        # warm verify of a local authority then reads nothing that did not change.
        self.capabilities = replace(LocalEndpoint.capabilities, local_root=self.root)

    def describe(self):
        return f"local:{self.root}"

    def check_access(self):
        """A local authority is reached when its directory can be listed."""
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError as error:
            raise EndpointError(f"{self.describe()}: cannot list the directory ({error.strerror}); is it mounted?",
                                permanent=True)
        return f"directory {self.root} readable"

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
        try:
            written = write_file(self.root, path, lambda: open(source, "rb"), algorithms=("sha256",),
                                 expected={"sha256": digests["sha256"]} if digests.get("sha256") else None)
        except DigestMismatch as error:
            raise EndpointError(f"{self.describe()}: {path} was corrupted while writing ({error})", permanent=True)
        except UnsafePath as error:
            raise EndpointError(f"{self.describe()}: {error}", permanent=True)
        return Entry(path, written.size, written.digests["sha256"], "sha256", written.info.st_mtime_ns / 1e9)

    def delete_entry(self, path):
        try:
            remove_file(self.root, path)
        except UnsafePath as error:
            raise EndpointError(f"{self.describe()}: {error}", permanent=True)
