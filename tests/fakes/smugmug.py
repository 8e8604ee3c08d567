"""A loopback SmugMug: API v2 (the walk the client does) plus the upload endpoint.

It speaks the wire facts of shared/reference/cloud-apis.md: the JSON envelope,
`Pages.NextPage` paging with `start`/`count`, `Uris.X` as objects unless `_shorturis`
is sent (or `short_uris_always` is set: the tolerance test), the `AlbumImage` key
ABSENT on an empty album, images without `ArchivedMD5`, `stat: fail` answered as
HTTP 200, 401 `oauth_problem=...`, rate-limit headers, and OAuth 1.0a HMAC-SHA1
signatures checked with oauthlib against the configured consumer and token.
"""

import base64
import hashlib
import itertools
from types import SimpleNamespace
from urllib.parse import quote, unquote

from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from tests.fakes.http import FakeServer, Response, json_response

CREDENTIALS = {
    "SMUGMUG_API_KEY": "fake-consumer-key-1234",
    "SMUGMUG_API_SECRET": "fake-consumer-secret-5678",
    "SMUGMUG_TOKEN": "fake-access-token-9abc",
    "SMUGMUG_TOKEN_SECRET": "fake-token-secret-def0",
}


def credentials_text(credentials=CREDENTIALS):
    return "".join(f"{key}={value}\n" for key, value in credentials.items())


class FakeSmugMug(FakeServer):
    def __init__(self, nickname="tester", credentials=CREDENTIALS, content_md5="either"):
        super().__init__()
        self.nickname = nickname
        self.credentials = dict(credentials)
        self.content_md5 = content_md5  # "base64" | "hex" | "either" | "ignore": which form the upload checks
        self.short_uris_always = False
        self.verify_signatures = True
        self.albums = {}  # AlbumKey -> {"UrlPath", "Name", "images": [image dict]}
        self.images = {}  # ImageKey -> image dict (with "data" and "album")
        self.nonces = set()
        self.counter = itertools.count(1)
        self.uploads = 0

    # --- seeding ----------------------------------------------------------------

    def new_key(self, prefix):
        return f"{prefix}k{next(self.counter):05d}"

    def add_album(self, url_path, name=None):
        key = self.new_key("A")
        self.albums[key] = {"UrlPath": url_path, "Name": name or url_path.rsplit("/", 1)[-1], "images": []}
        return key

    def add_image(self, album_key, file_name, data, archived=True, video=False, processing=False,
                  reencoded=None):
        """Add an image; `archived=False` drops ArchivedMD5/Size/Uri (as SmugMug sometimes does),
        `archived="no-md5"` only ArchivedMD5;
        a video is served re-encoded (`reencoded` bytes) through !largestvideo."""
        key = self.new_key("I")
        image = {"ImageKey": key, "FileName": file_name, "data": bytes(data), "album": album_key,
                 "archived": archived, "video": video, "processing": processing,
                 "reencoded": reencoded if reencoded is not None else b"re-encoded:" + bytes(data)}
        self.albums[album_key]["images"].append(image)
        self.images[key] = image
        return key

    def album_by_path(self, url_path):
        for key, album in self.albums.items():
            if album["UrlPath"] == url_path:
                return key
        return None

    # --- the wire -----------------------------------------------------------------

    def error_body(self, status):
        if status == 401:
            return {"Message": "oauth_problem=token_rejected", "Code": 401}
        if status == 429:
            return {"Message": "Too Many Requests", "Code": 429}
        return {"Message": "Error", "Code": status}

    def uri(self, request, value, locator=""):
        if self.short_uris_always or "_shorturis" in request.query:
            return value
        return {"Uri": value, "Locator": locator, "LocatorType": "Objects", "UriDescription": "", "EndpointType": ""}

    def envelope(self, request, response, status=200):
        headers = {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "3600"}
        return json_response({"Request": {"Version": "v2", "Method": request.method, "Uri": request.raw_path},
                              "Options": {}, "Response": response, "Code": status,
                              "Message": "Ok" if status < 300 else "Error"}, status, headers)

    def not_found(self, request):
        return json_response({"Code": 404, "Message": "Not Found",
                              "Request": {"Version": "v2", "Method": request.method, "Uri": request.raw_path}}, 404)

    def check_oauth(self, request):
        """Return a 401 Response unless the request carries a valid OAuth 1.0a HMAC-SHA1
        Authorization header for the configured consumer and token."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("OAuth "):
            return json_response({"Message": "oauth_problem=parameter_absent", "Code": 401}, 401)
        params = dict(oauth_utils.parse_authorization_header(header))
        if params.get("oauth_signature_method") != "HMAC-SHA1":
            return json_response({"Message": "oauth_problem=signature_method_rejected", "Code": 401}, 401)
        if params.get("oauth_consumer_key") != self.credentials["SMUGMUG_API_KEY"]:
            return json_response({"Message": "oauth_problem=consumer_key_unknown", "Code": 401}, 401)
        if params.get("oauth_token") != self.credentials["SMUGMUG_TOKEN"]:
            return json_response({"Message": "oauth_problem=token_rejected", "Code": 401}, 401)
        nonce = params.get("oauth_nonce")
        with self.lock:
            if nonce in self.nonces:
                return json_response({"Message": "oauth_problem=nonce_used", "Code": 401}, 401)
            self.nonces.add(nonce)
        if self.verify_signatures:
            collected = oauth_signature.collect_parameters(
                uri_query=request.query_string, headers={"Authorization": header}, exclude_oauth_signature=True)
            normalized = oauth_signature.normalize_parameters(collected)
            host = request.headers.get("Host", f"127.0.0.1:{self.port}")
            base_uri = oauth_signature.base_string_uri(f"http://{host}{request.path}")
            base = oauth_signature.signature_base_string(request.method, base_uri, normalized)
            secrets = SimpleNamespace(client_secret=self.credentials["SMUGMUG_API_SECRET"],
                                      resource_owner_secret=self.credentials["SMUGMUG_TOKEN_SECRET"])
            expected = oauth_signature.sign_hmac_sha1_with_client(base, secrets)
            if expected != oauth_utils.unescape(params.get("oauth_signature", "")):
                return json_response({"Message": "oauth_problem=signature_invalid", "Code": 401}, 401)
        return None

    def handle(self, request):
        path = unquote(request.path)
        if request.method == "GET" and path.startswith(("/photos/", "/videos/")):
            return self.download(path)
        refused = self.check_oauth(request)
        if refused:
            return refused
        if request.method == "POST" and path == "/":
            return self.upload(request)
        if request.headers.get("Accept") != "application/json":
            return Response(200, b"<html>API browser</html>", content_type="text/html")
        if path == "/api/v2!authuser" and request.method == "GET":
            return self.envelope(request, {"User": {
                "NickName": self.nickname, "Name": "Test User", "Uri": f"/api/v2/user/{self.nickname}",
                "Uris": {"UserAlbums": self.uri(request, f"/api/v2/user/{self.nickname}!albums")}}})
        if path.startswith("/api/v2/user/") and path.endswith("!albums") and request.method == "GET":
            nick = path[len("/api/v2/user/"):-len("!albums")]
            if nick != self.nickname:
                return self.not_found(request)
            albums = [self.album_document(request, key) for key in self.albums]
            return self.paged(request, path, "Album", albums)
        if path.startswith("/api/v2/album/"):
            rest = path[len("/api/v2/album/"):]
            if rest.endswith("!images") and request.method == "GET":
                key = rest[:-len("!images")]
                if key not in self.albums:
                    return self.not_found(request)
                images = [self.image_document(request, image) for image in self.albums[key]["images"]]
                return self.paged(request, path, "AlbumImage", images)
            if "/image/" in rest:
                album_key, _, image_part = rest.partition("/image/")
                image = self.images.get(image_part.rsplit("-", 1)[0])
                if album_key not in self.albums or not image or image["album"] != album_key:
                    return self.not_found(request)
                if request.method == "DELETE":
                    self.albums[album_key]["images"].remove(image)
                    del self.images[image["ImageKey"]]
                    return self.envelope(request, {})
                return self.envelope(request, {"AlbumImage": self.image_document(request, image)})
            if rest in self.albums and request.method == "GET":
                return self.envelope(request, {"Album": self.album_document(request, rest)})
            return self.not_found(request)
        if path.startswith("/api/v2/image/") and request.method == "GET":
            rest = path[len("/api/v2/image/"):]
            image_part, _, method = rest.partition("!")
            image = self.images.get(image_part.rsplit("-", 1)[0])
            if not image:
                return self.not_found(request)
            if method == "largestvideo":
                if not image["video"]:
                    return self.not_found(request)
                return self.envelope(request, {"LargestVideo": {
                    "Url": f"{self.url}/videos/{image['ImageKey']}/largest.mp4", "Size": len(image["reencoded"]),
                    "MD5": hashlib.md5(image["reencoded"]).hexdigest(), "Ext": "mp4",
                    "Uri": f"/api/v2/image/{image['ImageKey']}-0!largestvideo"}})
            if method:
                return self.not_found(request)
            return self.envelope(request, {"Image": self.image_document(request, image, album=False)})
        return self.not_found(request)

    def album_document(self, request, key):
        album = self.albums[key]
        return {"AlbumKey": key, "Uri": f"/api/v2/album/{key}", "UrlPath": album["UrlPath"], "Name": album["Name"],
                "UrlName": album["UrlPath"].rsplit("/", 1)[-1], "LastUpdated": "2026-01-01T00:00:00+00:00",
                "ImagesLastUpdated": "2026-01-01T00:00:00+00:00", "ImageCount": len(album["images"]),
                "Uris": {"AlbumImages": self.uri(request, f"/api/v2/album/{key}!images")}}

    def image_document(self, request, image, album=True):
        key = image["ImageKey"]
        uri = f"/api/v2/album/{image['album']}/image/{key}-0" if album else f"/api/v2/image/{key}-0"
        document = {"Uri": uri, "ImageKey": key, "FileName": image["FileName"],
                    "Date": "2026-01-01T00:00:00+00:00", "LastUpdated": "2026-01-02T00:00:00+00:00",
                    "Format": image["FileName"].rsplit(".", 1)[-1].upper(), "IsVideo": image["video"],
                    "Processing": image["processing"], "OriginalSize": len(image["data"]),
                    "Uris": {"ImageMetadata": self.uri(request, f"/api/v2/image/{key}-0!metadata"),
                             "Image": self.uri(request, f"/api/v2/image/{key}-0")}}
        if image["video"]:
            document["Uris"]["LargestVideo"] = self.uri(request, f"/api/v2/image/{key}-0!largestvideo")
        if image["archived"]:
            document.update(ArchivedSize=len(image["data"]),
                            ArchivedUri=f"{self.url}/photos/{key}/{quote(image['FileName'])}")
            if image["archived"] != "no-md5":
                document["ArchivedMD5"] = hashlib.md5(image["data"]).hexdigest()
        return document

    def paged(self, request, path, key, items):
        start = max(int(request.query.get("start", 1) or 1), 1)
        count = max(int(request.query.get("count", 10) or 10), 1)
        chunk = items[start - 1:start - 1 + count]
        total = len(items)

        def page(first):
            return f"{path}?start={first}&count={count}"

        pages = {"Total": total, "Start": start, "Count": len(chunk), "RequestedCount": count,
                 "FirstPage": page(1), "LastPage": page(max(1, total - (total - 1) % count if total else 1)),
                 "Misaligned": (start - 1) % count != 0}
        if start > 1:
            pages["PrevPage"] = page(max(1, start - count))
        if start - 1 + count < total:
            pages["NextPage"] = page(start + count)
        response = {"Uri": request.raw_path, "Pages": pages}
        if chunk:
            response[key] = chunk  # on an empty album the key is ABSENT, not []
        return self.envelope(request, response)

    def download(self, path):
        _, kind, key, _name = path.split("/", 3)
        image = self.images.get(key)
        if not image or (kind == "photos" and not image["archived"]) or (kind == "videos" and not image["video"]):
            return Response(404, b"Not Found", content_type="text/plain")
        data = image["data"] if kind == "photos" else image["reencoded"]
        return Response(200, data, content_type="application/octet-stream")

    def upload(self, request):
        def fail(code, message):
            return json_response({"stat": "fail", "method": "smugmug.images.upload", "code": code,
                                  "message": message})

        headers = request.headers
        if headers.get("X-Smug-ResponseType") != "JSON" or headers.get("X-Smug-Version") != "v2":
            return fail(5, "system error: X-Smug-ResponseType and X-Smug-Version are required")
        album_uri = headers.get("X-Smug-AlbumUri", "")
        album_key = album_uri.rsplit("/", 1)[-1]
        if not album_uri.startswith("/api/v2/album/") or album_key not in self.albums:
            return fail(4, "invalid album")
        digest = hashlib.md5(request.body).digest()
        sent = headers.get("Content-MD5")
        if sent is not None and self.content_md5 != "ignore":
            accepted = {"base64": [base64.b64encode(digest).decode()], "hex": [digest.hex()],
                        "either": [base64.b64encode(digest).decode(), digest.hex()]}[self.content_md5]
            if sent not in accepted:
                return fail(5, "inconsistent MD5")
        name = headers.get("X-Smug-FileName") or "upload.jpg"
        with self.lock:
            self.uploads += 1
            key = self.add_image(album_key, unquote(name), request.body)
        return json_response({"stat": "ok", "method": "smugmug.images.upload", "Asset": {"Type": "Image"},
                              "Image": {"ImageUri": f"/api/v2/image/{key}-0",
                                        "AlbumImageUri": f"/api/v2/album/{album_key}/image/{key}-0",
                                        "URL": f"{self.url}/photos/{key}"}})
