"""A Bunny Edge Storage zone (or a folder of one) as the authoritative copy.

The HTTP API lists one directory level per call, so the listing recurses on
`IsDirectory`. `Checksum` is the upper-case SHA-256 of the object; uploads send it
so that the server refuses corrupted bytes (400). A missing directory answers 404 or
`[]` (the docs leave it open); both mean "empty".
"""

import os
from datetime import UTC, datetime
from urllib.parse import quote

from syncer.endpoints.base import Capabilities, Entry, check_relative_path
from syncer.endpoints.http import NotFound, ResponseStream, send
from syncer.errors import EndpointError

DEFAULT_ENDPOINT = "https://storage.bunnycdn.com"


def region_endpoint(region):
    """Return the storage host of a region code (`de`, the default, is Frankfurt)."""
    if not region or region == "de":
        return DEFAULT_ENDPOINT
    return f"https://{region}.storage.bunnycdn.com"


def parse_time(value):
    """Bunny's times carry no timezone and optional milliseconds; they are UTC."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class BunnyEndpoint:
    capabilities = Capabilities(checksum="sha256")

    def __init__(self, zone, access_key, path="", endpoint=None, credentials_file=None):
        import requests

        self.zone = zone
        self.prefix = path.strip("/")
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        if "://" not in self.endpoint:
            self.endpoint = region_endpoint(self.endpoint)
        self.credentials_file = credentials_file
        self.session = requests.Session()
        self.session.headers["AccessKey"] = access_key or ""

    def describe(self):
        where = f"bunnycdn:{self.zone}/{self.prefix}".rstrip("/")
        return where if self.endpoint == DEFAULT_ENDPOINT else f"{where} at {self.endpoint}"

    def _credential_hint(self):
        where = f" in {self.credentials_file}" if self.credentials_file else ""
        return f"BUNNY_ACCESS_KEY{where} (the storage zone password) and the region endpoint"

    def _url(self, relative, directory=False):
        parts = [self.zone] + ([self.prefix] if self.prefix else []) + ([relative] if relative else [])
        url = f"{self.endpoint}/" + quote("/".join(parts))
        return url + "/" if directory else url

    def _request(self, method, url, **arguments):
        return send(self.session, method, url, self.describe(), self._credential_hint(), **arguments)

    def _list_directory(self, relative):
        """Return the JSON array of one directory; [] for a missing one (404 or [])."""
        try:
            response = self._request("GET", self._url(relative, directory=True))
        except NotFound:
            return []
        try:
            listing = response.json()
        except ValueError:
            raise EndpointError(f"{self.describe()}: the listing of /{relative} is not JSON")
        if not isinstance(listing, list):
            raise EndpointError(f"{self.describe()}: the listing of /{relative} is not an array", permanent=True)
        return listing

    def check_access(self):
        """List the zone's root: the storage zone password is checked by every request."""
        url = f"{self.endpoint}/{quote(self.zone)}/"
        try:
            listing = self._request("GET", url).json()
        except ValueError:
            raise EndpointError(f"{self.describe()}: the listing of the zone's root is not JSON")
        if not isinstance(listing, list):
            raise EndpointError(f"{self.describe()}: the listing of the zone's root is not an array", permanent=True)
        return f"zone {self.zone}: {len(listing)} entries at its root"

    def list_entries(self):
        pending = [""]
        while pending:
            directory = pending.pop()
            for item in sorted(self._list_directory(directory), key=lambda item: str(item.get("ObjectName"))):
                name = str(item.get("ObjectName") or "")
                path = f"{directory}/{name}" if directory else name
                problem = check_relative_path(path) or ("'/' in ObjectName" if "/" in name else None)
                if problem:
                    yield Entry(path.replace("\x00", "?"), item.get("Length"), note=f"unsafe name: {problem}")
                    continue
                if item.get("IsDirectory"):
                    pending.append(path)
                    continue
                checksum = item.get("Checksum")
                mtime = parse_time(item.get("LastChanged"))
                if not checksum:
                    yield Entry(path, item.get("Length"), None, None, mtime, note="Bunny gives no Checksum", ref=path)
                else:
                    yield Entry(path, item.get("Length"), checksum.lower(), "sha256", mtime, ref=path)

    def open_entry(self, entry):
        return ResponseStream(self._request("GET", self._url(entry.path), stream=True))

    def write_entry(self, path, source, digests):
        """PUT the file with its upper-case SHA-256 in `Checksum`: Bunny refuses (400) bytes
        that do not match, so a corrupted upload never lands."""
        sha256 = digests.get("sha256")
        if not sha256:
            from syncer.index.hashing import hash_file

            sha256 = hash_file(source, ("sha256",)).digests["sha256"]
        with open(source, "rb") as body:
            self._request("PUT", self._url(path), data=body,
                         headers={"Checksum": sha256.upper(), "Content-Type": "application/octet-stream"})
        return Entry(path, os.path.getsize(source), sha256.lower(), "sha256")

    def delete_entry(self, path):
        try:
            self._request("DELETE", self._url(path))
        except NotFound:
            pass
