"""The contract every authoritative copy implements.

An endpoint lists its entries with their size and native checksum, reads an entry,
writes an entry carrying the service's checksum, deletes one, and says what it can
do. It knows nothing of syncer's state: the actions record its answers in the index.
A service of git repositories answers a second contract, MirrorEndpoint. Retry, rate
limits and dry-run are wrappers around these contracts (see syncer.endpoints.wrappers),
never code inside an endpoint.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from syncer.fsio import is_temporary_name
from syncer.verdict import Copy


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
    """What an endpoint can do, declared as data: actions read these, never probe for methods."""

    checksum: str | None  # the algorithm of the native checksum: "md5", "sha256" or None
    can_read: bool = True
    can_write: bool = True
    can_delete: bool = True
    head_sha256: bool = False  # head_sha256(path) reads a full-object SHA-256 (S3: x-amz-checksum-sha256)
    local_root: Path | None = None  # a directory on this machine: verify indexes it with the hash cache
    repositories: bool = False  # the entries are git repositories: the MirrorEndpoint contract, not Endpoint's
    documents: "Documents | None" = None  # the entries are documents the service renders (DNS zones): see Documents
    reason: str = ""  # why a capability is missing, shown when a test or a command skips it


class Documents(Protocol):
    """The format of entries that are documents an endpoint renders from its service's
    API (a DNS zone's records) rather than bytes it stores. Such an entry's checksum is
    `digest(path, data)`: a digest of what the document says, so that what the service
    changes by itself (an SOA serial) is no difference. Every action digests the local
    copy with the same function; sizes are not compared (entries list None). Pure: no I/O;
    merge and plan raise ValueError for a document they cannot read."""

    def digest(self, path: str, data: bytes) -> str:
        """Return the checksum (lowercase hex SHA-256) of the document `data` named `path`."""

    def difference(self, path: str, here: bytes, there: bytes) -> str | None:
        """Say how the document `there` (the service's) differs from `here` (ours), or None."""

    def writable(self, path: str) -> bool:
        """Whether write_entry takes `path` (others follow it: a zone file export follows the records)."""

    def merge(self, path: str, ours: bytes, theirs: bytes) -> tuple[bytes, str | None]:
        """Return `ours` with what only `theirs` holds added back, and a description of that
        (None when there is none): a restore without --delete keeps what only the service has."""

    def plan(self, path: str, wanted: bytes, there: bytes) -> str | None:
        """Say what writing `wanted` over `there` changes at the service, or None."""


class Endpoint(Protocol):
    """The contract of an authoritative copy of files."""

    capabilities: Capabilities

    def describe(self) -> str:
        """A short name of the endpoint for messages (never with credentials)."""

    def check_access(self) -> str:
        """Make one cheap authenticated request; return a short detail for `syncer doctor` (the
        account or user it reached, never a secret). Raise EndpointError when refused or unreachable."""

    def list_entries(self) -> Iterator[Entry]:
        """Yield every entry of the authoritative copy."""

    def open_entry(self, entry: Entry) -> BinaryIO:
        """Return a readable binary stream of the entry's content (a context manager)."""

    def write_entry(self, path: str, source: str, digests: dict) -> Entry:
        """Upload the file at `source` as `path`, with the service's checksum taken from
        `digests` ({"md5": hex, "sha256": hex}); return the stored entry."""

    def delete_entry(self, path: str) -> None:
        """Remove `path` from the authoritative copy."""

    def head_sha256(self, path: str) -> str | None:
        """Only with capabilities.head_sha256: return the SHA-256 (hex) the service keeps
        for the whole of `path`, or None when it keeps none for this entry."""


class MirrorEndpoint(Protocol):
    """The contract of a service of git repositories (GitLab), copied with git rather than
    file by file. A project is the service's description of one repository: a dict with
    at least `path_with_namespace` and `http_url_to_repo`."""

    capabilities: Capabilities  # repositories=True

    def describe(self) -> str:
        """A short name of the endpoint for messages (never with credentials)."""

    def check_access(self) -> str:
        """Make one cheap authenticated request; return a short detail for `syncer doctor` (the
        account or user it reached, never a secret). Raise EndpointError when refused or unreachable."""

    def list_entries(self) -> Iterator[Entry]:
        """Yield one entry per repository, `<path_with_namespace>.git`, whose checksum is
        syncer.endpoints.git.refs_digest of its branches and tags and whose ref is
        {"project": project, "refs": {refname: sha}}."""

    def list_projects(self) -> list[dict]:
        """Return every project the endpoint covers, each once."""

    def remote_refs(self, project: dict) -> dict:
        """Return {refname: sha} of the project's branches and tags."""

    def clone_mirror(self, project: dict, target: Path) -> None:
        """Clone the project as a bare mirror at `target` (never left half-cloned)."""

    def update_mirror(self, project: dict, target: Path) -> None:
        """Fetch into the existing mirror at `target`, pruning refs deleted upstream."""

    def create_project(self, namespace: str, path: str) -> dict:
        """Create the project `path` in `namespace`; return it."""

    def push_refs(self, mirror: Path, project: dict) -> None:
        """Push the branches and tags of the mirror at `mirror` to the project (never forced)."""


def entry_copy(entry):
    """Return `entry` as the copy the verdict expects (syncer.verdict.judge)."""
    return Copy(entry.size, {entry.algorithm: entry.checksum} if entry.checksum else {}, note=entry.note)


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
    if any(is_temporary_name(part) for part in parts):
        return "the shape of syncer's temporary files"
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in parts) or len(path) > 4000:
        return "name too long"
    return None
