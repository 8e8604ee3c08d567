"""The contract every authoritative copy implements.

An endpoint lists its entries with their size and native checksum, reads an entry,
writes an entry carrying the service's checksum, deletes one, and says what it can
do. Retry, rate limits and dry-run are wrappers around this contract (see
syncer.endpoints.wrappers), never code inside an endpoint.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class Entry:
    """One item of an authoritative copy.

    `path` is relative to the dataset, '/' separated. `checksum` is lowercase hex
    in `algorithm` ("md5", "sha256", or "etag" for an S3 multipart ETag), or None
    when the service offers none; `note` then says why. `ref` is the endpoint's own
    handle for reading the entry (a key, a URL).
    """

    path: str
    size: int | None
    checksum: str | None = None
    algorithm: str | None = None
    mtime: float | None = None
    note: str | None = None
    ref: object = field(default=None, compare=False)


@dataclass(frozen=True)
class Capabilities:
    checksum: str | None  # the algorithm of the native checksum: "md5", "sha256" or None
    can_read: bool = True
    can_write: bool = True
    can_delete: bool = True
    reason: str = ""  # why a capability is missing, shown when a test or a command skips it


class Endpoint(Protocol):
    capabilities: Capabilities

    def describe(self) -> str:
        """A short name of the endpoint for messages (never with credentials)."""

    def list_entries(self) -> Iterator[Entry]:
        """Yield every entry of the authoritative copy."""

    def open_entry(self, entry: Entry) -> BinaryIO:
        """Return a readable binary stream of the entry's content (a context manager)."""

    def write_entry(self, path: str, source: str, digests: dict) -> Entry:
        """Upload the file at `source` as `path`, with the service's checksum taken from
        `digests` ({"md5": hex, "sha256": hex}); return the stored entry."""

    def delete_entry(self, path: str) -> None:
        """Remove `path` from the authoritative copy."""

    def refresh_listing(self, db, dataset: str, deep: bool = False) -> list:
        """Store the current listing as the dataset's authority side in the index;
        return (path, reason) of items skipped."""


# A note starting with this marks an entry the service lists but offers nothing to
# download (SmugMug without an original): it cannot be fetched, so a missing local copy
# is unverifiable, never a finding that no action could clear.
NOTHING_TO_DOWNLOAD = "nothing to download: "


def store_listing(endpoint, db, dataset):
    """The usual refresh_listing: replace the indexed listing with list_entries()."""
    db.replace_listing(dataset, endpoint.list_entries())
    return []


def check_relative_path(path):
    """Return why `path` (from a remote listing) is unsafe as a local name, or None."""
    if not path or "\x00" in path:
        return "empty name or NUL byte"
    if path.startswith("/") or path.startswith("\\"):
        return "absolute path"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "'.', '..' or empty component"
    if any(ord(char) < 32 for char in path):
        return "control character"
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in parts) or len(path) > 4000:
        return "name too long"
    return None
