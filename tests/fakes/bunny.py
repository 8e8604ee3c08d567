"""A loopback Bunny Edge Storage (HTTP API), per shared/reference/cloud-apis.md.

`AccessKey` header; `GET /{zone}/{path}/` lists ONE directory level as a JSON array
(no paging); objects carry upper-case SHA-256 `Checksum` (null for directories) and
`LastChanged` without a timezone (with or without milliseconds); `PUT` with a
`Checksum` header is refused with 400 on a mismatch; a missing directory answers 404
or `[]` (UNCONFIRMED: `missing_directory` chooses); `DESCRIBE` returns one object.
"""

import hashlib
import json
import uuid
from urllib.parse import unquote

from tests.fakes.http import FakeServer, Response, json_response

ACCESS_KEY = "fake-bunny-zone-password-0001"


class FakeBunny(FakeServer):
    def __init__(self, zone="files", access_key=ACCESS_KEY, missing_directory="404"):
        super().__init__()
        self.zone = zone
        self.access_key = access_key
        self.missing_directory = missing_directory  # "404" or "empty"
        self.files = {}  # "dir/name" -> bytes
        self.milliseconds = True
        self.checksums = {}  # key -> (the bytes object, its checksum)
        self.corrupt = {}  # "dir/name" -> how many more downloads to serve with one byte flipped
        self.raw_entries = {}  # directory -> [ObjectName]: names no real key could hold (hostile)

    def add_raw_entry(self, directory, name, data=b"x"):
        """List an object named `name` in `directory` whatever it is ("..", "a/b", NUL)."""
        self.raw_entries.setdefault(directory.strip("/"), []).append((name, bytes(data)))

    def put_file(self, path, data):
        self.files[path.strip("/")] = bytes(data)

    def error_body(self, status):
        return {"HttpCode": status, "Message": {401: "Unauthorized", 429: "Too Many Requests"}.get(status, "Error")}

    def handle(self, request):
        if request.headers.get("AccessKey") != self.access_key:
            return json_response({"HttpCode": 401, "Message": "Unauthorized"}, 401)
        path = unquote(request.path)
        zone, _, rest = path.lstrip("/").partition("/")
        if zone != self.zone:
            return json_response({"HttpCode": 401, "Message": "Unauthorized"}, 401)
        method = request.method
        if method == "GET" and (rest == "" or rest.endswith("/")):
            return self.list_directory(rest.strip("/"))
        key = rest.strip("/")
        if method == "GET":
            if key not in self.files:
                return json_response({"HttpCode": 404, "Message": "Object Not Found"}, 404)
            data = self.files[key]
            with self.lock:
                if self.corrupt.get(key) and data:
                    self.corrupt[key] -= 1
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
            return Response(200, data, content_type="application/octet-stream")
        if method == "DESCRIBE":
            if key not in self.files:
                return json_response({"HttpCode": 404, "Message": "Object Not Found"}, 404)
            directory, _, name = key.rpartition("/")
            return json_response(self.object_document(directory, name, False))
        if method == "PUT":
            checksum = request.headers.get("Checksum")
            if checksum is not None and checksum.upper() != hashlib.sha256(request.body).hexdigest().upper():
                return json_response({"HttpCode": 400, "Message": "Invalid checksum. Upload failed."}, 400)
            with self.lock:
                self.files[key] = request.body
            return json_response({"HttpCode": 201, "Message": "File uploaded."}, 201)
        if method == "DELETE":
            with self.lock:
                if rest.endswith("/"):
                    doomed = [name for name in self.files if name.startswith(key + "/")]
                    for name in doomed:
                        del self.files[name]
                    found = bool(doomed)
                else:
                    found = self.files.pop(key, None) is not None
            if not found:
                return json_response({"HttpCode": 404, "Message": "Object Not Found"}, 404)
            return json_response({"HttpCode": 200, "Message": "File deleted successfuly."})
        return json_response({"HttpCode": 405, "Message": "Method Not Allowed"}, 405)

    def list_directory(self, directory):
        prefix = directory + "/" if directory else ""
        names, subdirectories = [], set()
        for key in sorted(self.files):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if "/" in rest:
                subdirectories.add(rest.split("/", 1)[0])
            else:
                names.append(rest)
        if directory and not names and not subdirectories and directory not in self.raw_entries:
            if self.missing_directory == "404":
                return json_response({"HttpCode": 404, "Message": "Object Not Found"}, 404)
            return Response(200, b"[]")
        listing = [self.object_document(directory, name, True) for name in sorted(subdirectories)]
        listing += [self.object_document(directory, name, False) for name in names]
        for name, data in self.raw_entries.get(directory, []):
            document = self.object_document(directory, "placeholder", True)
            document.update(ObjectName=name, IsDirectory=False, Length=len(data),
                            Checksum=hashlib.sha256(data).hexdigest().upper())
            listing.append(document)
        return Response(200, json.dumps(listing).encode())

    def checksum(self, key, data):
        """The upper-case SHA-256, remembered per stored object (so that listing a big
        zone does not re-hash it; a replaced object is a new bytes object)."""
        cached = self.checksums.get(key)
        if cached is None or cached[0] is not data:
            cached = (data, hashlib.sha256(data).hexdigest().upper())
            self.checksums[key] = cached
        return cached[1]

    def object_document(self, directory, name, is_directory):
        key = f"{directory}/{name}" if directory else name
        data = b"" if is_directory else self.files[key]
        stamp = "2026-03-18T08:00:00.123" if self.milliseconds else "2026-03-18T08:00:00"
        return {
            "Guid": str(uuid.uuid5(uuid.NAMESPACE_URL, key)), "StorageZoneName": self.zone,
            "Path": f"/{self.zone}/{directory + '/' if directory else ''}", "ObjectName": name,
            "Length": 0 if is_directory else len(data), "LastChanged": stamp, "DateCreated": stamp,
            "IsDirectory": is_directory, "ServerId": 12, "ArrayNumber": 0, "UserId": "user-guid",
            "StorageZoneId": 1234, "ContentType": "",
            "Checksum": None if is_directory else self.checksum(key, data),
            "ReplicatedZones": None if is_directory else "UK,NY",
        }
