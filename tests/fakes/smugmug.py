"""A loopback SmugMug: API v2 (the walk the client does) plus the upload endpoint.

It serves what the real service serves (shared/reference/cloud-apis.md), in bodies of
the real size and shape: the JSON envelope; `Pages` as real answers carry them (a full
page always offers a `NextPage`, even when it points past `Total`; an empty listing has
no `Album`/`AlbumImage` key and a `LastPage` with a negative start; `Misaligned` only
when it is true); `Uris.X` as objects unless `_shorturis` is sent (or
`short_uris_always` is set: the tolerance test); image keys with real serials above 0
(a request with another serial is a 404); photos and videos with `ArchivedMD5`,
`ArchivedSize` and `ArchivedUri` or with none of the three (an album with
`AllowDownloads: false`, or `archived=False`); videos with `Format: MP4` whatever their
FileName, served re-encoded through `!largestvideo`; the upload answer with
`StatusImageReplaceUri: null` and `URL`; `stat: fail` answered as HTTP 200; 401
`oauth_problem=...`; rate-limit headers; OAuth 1.0a HMAC-SHA1 signatures checked with
oauthlib against the configured consumer and token.

Every upload POST is written to `upload_log`, so a test can hold a report against what
the service really received.
"""

import base64
import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import quote, unquote

from oauthlib.oauth1 import AccessTokenEndpoint, RequestTokenEndpoint, RequestValidator
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from tests.fakes.http import FakeServer, Response, json_response

CREDENTIALS = {
    "SMUGMUG_API_KEY": "fake-consumer-key-1234",
    "SMUGMUG_API_SECRET": "fake-consumer-secret-5678",
    "SMUGMUG_TOKEN": "fake-access-token-9abc",
    "SMUGMUG_TOKEN_SECRET": "fake-token-secret-def0",
}
VIDEO_EXTENSIONS = {"mov", "mp4", "m4v", "avi", "mts", "3gp", "wmv", "mpg", "mpeg"}
FIRST_DATE = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
# The image endpoints a real AlbumImage links to, each as a Uris entry (real answers carry ~25).
IMAGE_URIS = ("LargestImage", "ImageSizes", "ImageSizeDetails", "PointOfInterest", "PointOfInterestCrops",
              "Regions", "ImageAlbum", "ImageOwner", "ImagePrices", "ImagePricelistExclusions",
              "ImageMetadata", "ImageComments", "RotateImage", "ColorImage", "CopyImage", "CropImage",
              "ImageDownload")
ALBUM_URIS = ("AlbumShareUris", "Node", "NodeCoverImage", "User", "Folder", "ParentFolders",
              "HighlightImage", "AlbumHighlightImage", "AlbumPrices", "AlbumPricelistExclusions",
              "AlbumPopularMedia", "AlbumGeoMedia", "AlbumComments", "AlbumDownload", "AlbumPackages")


class OAuthValidator(RequestValidator):
    """oauthlib's server side of the three OAuth 1.0a endpoints, for one consumer: it
    checks the HMAC-SHA1 signatures, the request token and the verifier. A user who
    opens the authorize URL approves at once: every request token gets `fake.verifier`."""

    enforce_ssl = False  # loopback http
    realms = []
    dummy_client = dummy_request_token = dummy_access_token = "dummy"

    def __init__(self, fake):
        super().__init__()
        self.fake = fake

    # The fake's keys carry dashes, which oauthlib's format checks refuse: any text will do.
    def check_client_key(self, client_key):
        return bool(client_key)

    check_request_token = check_verifier = check_nonce = check_client_key

    def validate_client_key(self, client_key, request):
        return client_key == self.fake.credentials["SMUGMUG_API_KEY"]

    def get_client_secret(self, client_key, request):
        return self.fake.credentials["SMUGMUG_API_SECRET"]

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request, request_token=None,
                                     access_token=None):
        with self.fake.lock:
            if nonce in self.fake.nonces:
                return False
            self.fake.nonces.add(nonce)
            return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        return redirect_uri == "oob"

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def get_default_realms(self, client_key, request):
        return []

    def get_realms(self, token, request):
        return []

    def save_request_token(self, token, request):
        self.fake.request_tokens[token["oauth_token"]] = {"secret": token["oauth_token_secret"],
                                                          "verifier": self.fake.verifier}

    def validate_request_token(self, client_key, token, request):
        return token in self.fake.request_tokens

    def get_request_token_secret(self, client_key, token, request):
        return self.fake.request_tokens.get(token, {}).get("secret", "dummy")

    def validate_verifier(self, client_key, token, verifier, request):
        return self.fake.request_tokens.get(token, {}).get("verifier") == verifier

    def invalidate_request_token(self, client_key, request_token, request):
        self.fake.request_tokens.pop(request_token, None)

    def save_access_token(self, token, request):
        self.fake.credentials.update(SMUGMUG_TOKEN=token["oauth_token"],
                                     SMUGMUG_TOKEN_SECRET=token["oauth_token_secret"])


def credentials_text(credentials=CREDENTIALS):
    return "".join(f"{key}={value}\n" for key, value in credentials.items())


def extension_of(file_name):
    stem, dot, extension = file_name.rpartition(".")
    return extension.lower() if dot and stem else ""


class FakeSmugMug(FakeServer):
    def __init__(self, nickname="tester", credentials=CREDENTIALS, content_md5="either"):
        super().__init__()
        self.nickname = nickname
        self.credentials = dict(credentials)
        self.content_md5 = content_md5  # "base64" | "hex" | "either" | "ignore": which form the upload checks
        self.short_uris_always = False
        self.endless_next_page = False  # hostile: a NextPage on every page, even an empty one past Total
        self.link_largest_video = True  # False: a video's Uris lack LargestVideo (ask on the image's own Uri)
        self.verify_signatures = True
        self.albums = {}  # AlbumKey -> {"UrlPath", "Name", "AllowDownloads", "images": [image dict]}
        self.images = {}  # ImageKey -> image dict (with "data", "album", "serial")
        self.upload_log = []  # one dict per upload POST: album, file_name, size, md5, stat, replaced
        self.nonces = set()
        self.counter = itertools.count(1)
        self.verifier = "482913"  # what the authorize page shows the user
        self.request_tokens = {}  # request token -> {"secret", "verifier"}
        validator = OAuthValidator(self)
        self.oauth_endpoints = {"getRequestToken": RequestTokenEndpoint(validator),
                                "getAccessToken": AccessTokenEndpoint(validator)}

    @property
    def uploads(self):
        """How many uploads the service accepted."""
        return sum(1 for upload in self.upload_log if upload["stat"] == "ok")

    def uploaded_paths(self):
        """`<UrlPath>/<FileName>` of every accepted upload, in the order they arrived."""
        return [f"{upload['album'].strip('/')}/{upload['file_name']}" for upload in self.upload_log
                if upload["stat"] == "ok"]

    # --- seeding ----------------------------------------------------------------

    def add_album(self, url_path, name=None, allow_downloads=True):
        """Add an album; with `allow_downloads=False` none of its images carries Archived*."""
        key = f"Ak{next(self.counter):05d}"
        self.albums[key] = {"UrlPath": url_path, "Name": name or url_path.rsplit("/", 1)[-1],
                            "AllowDownloads": allow_downloads, "images": []}
        return key

    def add_image(self, album_key, file_name, data, archived=True, video=None, processing=False,
                  reencoded=None, serial=None):
        """Add an image. `archived=False` drops ArchivedMD5, ArchivedSize and ArchivedUri
        together (what SmugMug serves when it offers no original); `archived="no-md5"`
        only ArchivedMD5 (a tolerance case). A video (by default: a video file name) is
        also served re-encoded (`reencoded` bytes) through !largestvideo. Real keys carry
        serials above 0: `serial` is 1 to 3 unless given."""
        number = next(self.counter)
        key = f"Ik{number:05d}"
        if video is None:
            video = extension_of(file_name) in VIDEO_EXTENSIONS
        image = {"ImageKey": key, "FileName": file_name, "data": bytes(data), "album": album_key,
                 "archived": archived, "video": video, "processing": processing, "number": number,
                 "serial": serial if serial is not None else 1 + number % 3,
                 "date": (FIRST_DATE + timedelta(minutes=number)).isoformat(),
                 "reencoded": reencoded if reencoded is not None else b"re-encoded:" + bytes(data)}
        self.albums[album_key]["images"].append(image)
        self.images[key] = image
        return key

    def album_by_path(self, url_path):
        for key, album in self.albums.items():
            if album["UrlPath"] == url_path:
                return key
        return None

    def remove_image(self, key):
        image = self.images.pop(key)
        self.albums[image["album"]]["images"].remove(image)

    def image_by_part(self, part):
        """The image of "KEY-SERIAL", or None (a wrong serial finds nothing, as upstream)."""
        key, _, serial = part.rpartition("-")
        image = self.images.get(key)
        return image if image and str(image["serial"]) == serial else None

    # --- the wire -----------------------------------------------------------------

    def error_body(self, status):
        if status == 401:
            return {"Message": "oauth_problem=token_rejected", "Code": 401}
        if status == 429:
            return {"Message": "Too Many Requests", "Code": 429}
        return {"Message": "Error", "Code": status}

    def uri(self, request, value, locator="", description=""):
        if self.short_uris_always or "_shorturis" in request.query:
            return value
        return {"Uri": value, "Locator": locator, "LocatorType": "Object" if locator else "Objects",
                "UriDescription": description, "EndpointType": locator}

    def envelope(self, request, response, status=200):
        headers = {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "3600"}
        options = {"MethodDetails": {"OPTIONS": {"Permissions": ["Read"]}, "GET": {"Permissions": ["Read"]}},
                   "MediaTypes": ["application/json", "application/vnd.php.serialized", "application/x-msgpack",
                                  "text/html", "text/csv"],
                   "Path": [{"type": "path", "text": "api"}, {"type": "path", "text": "v2"}]}
        return json_response({"Request": {"Version": "v2", "Method": request.method, "Uri": request.raw_path},
                              "Options": options, "Response": response, "Code": status,
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
        if path.startswith("/services/oauth/1.0a/"):
            return self.oauth(request, path.rsplit("/", 1)[-1])
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
                "WebUri": f"https://{self.nickname}.smugmug.com",
                "Uris": {"UserAlbums": self.uri(request, f"/api/v2/user/{self.nickname}!albums", "Album")}}})
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
                image_part, _, method = image_part.partition("!")
                image = self.image_by_part(image_part)
                if album_key not in self.albums or not image or image["album"] != album_key:
                    return self.not_found(request)
                if request.method == "DELETE" and not method:
                    self.remove_image(image["ImageKey"])
                    return self.envelope(request, {})
                if method:
                    return self.image_method(request, image, method)
                return self.envelope(request, {"AlbumImage": self.image_document(request, image)})
            if rest in self.albums and request.method == "GET":
                return self.envelope(request, {"Album": self.album_document(request, rest)})
            return self.not_found(request)
        if path.startswith("/api/v2/image/") and request.method == "GET":
            image_part, _, method = path[len("/api/v2/image/"):].partition("!")
            image = self.image_by_part(image_part)
            if not image:
                return self.not_found(request)
            if method:
                return self.image_method(request, image, method)
            return self.envelope(request, {"Image": self.image_document(request, image, album=False)})
        return self.not_found(request)

    def oauth(self, request, step):
        """The OAuth 1.0a endpoints: tokens from oauthlib's server side; authorize is the
        page the user opens (the fake approves at once)."""
        if step == "authorize":
            return Response(200, f"<html>Your code: {self.verifier}</html>".encode(), content_type="text/html")
        endpoint = self.oauth_endpoints.get(step)
        if endpoint is None:
            return self.not_found(request)
        host = request.headers.get("Host", f"127.0.0.1:{self.port}")
        create = endpoint.create_request_token_response if step == "getRequestToken" else \
            endpoint.create_access_token_response
        headers, body, status = create(f"http://{host}{request.raw_path}", http_method=request.method,
                                       body=request.body.decode() or None, headers=dict(request.headers))
        return Response(status, (body or "").encode(), headers,
                        content_type="application/x-www-form-urlencoded")

    def image_method(self, request, image, method):
        """`!largestvideo` (a video's own encoding: MP4 bytes, whatever the FileName)."""
        if method != "largestvideo" or not image["video"]:
            return self.not_found(request)
        key, serial, data = image["ImageKey"], image["serial"], image["reencoded"]
        return self.envelope(request, {"LargestVideo": {
            "Url": f"{self.url}/videos/{key}/{serial}/1920/{key}-1920.mp4", "Size": len(data),
            "MD5": hashlib.md5(data).hexdigest(), "Ext": "mp4", "Bitrate": 8000, "Duration": 12.5, "Height": 1080,
            "Width": 1920, "Usable": True, "Watermarked": False,
            "Uri": f"/api/v2/image/{key}-{serial}!largestvideo",
            "Uris": {"Image": self.uri(request, f"/api/v2/image/{key}-{serial}", "Image")}}})

    def album_document(self, request, key):
        album = self.albums[key]
        url_path = album["UrlPath"]
        uris = {name: self.uri(request, f"/api/v2/album/{key}!{name[0].lower()}{name[1:]}", name)
                for name in ALBUM_URIS}
        uris["AlbumImages"] = self.uri(request, f"/api/v2/album/{key}!images", "AlbumImage", "Images from album")
        return {"NiceName": album["Name"].replace(" ", "-"), "UrlName": url_path.rsplit("/", 1)[-1],
                "Title": album["Name"], "Name": album["Name"], "AllowDownloads": album["AllowDownloads"],
                "Backprinting": "", "BoutiquePackaging": "Inherit from User", "CanRank": True, "Clean": False,
                "Comments": True, "Description": "", "EXIF": True, "External": True, "FamilyEdit": False,
                "Filenames": False, "FriendEdit": False, "Geography": True, "Header": "Custom",
                "HideOwner": False, "InterceptShipping": "Inherit from User", "Keywords": "",
                "LargestSize": "Original", "PackagingBranding": True, "Password": "", "PasswordHint": "",
                "Printable": True, "Privacy": "Unlisted", "ProofDays": 0, "Protected": False, "Share": True,
                "Slideshow": True, "SmugSearchable": "Inherit from User", "SortDirection": "Ascending",
                "SortMethod": "Date Taken", "SquareThumbs": True, "TemplateUri": None, "Watermark": False,
                "WorldSearchable": True, "SecurityType": "None", "CommerceLightbox": False, "AlbumKey": key,
                "CanBuy": True, "CanFavorite": False, "Date": "2025-06-01T08:00:00+00:00",
                "LastUpdated": "2026-01-01T00:00:00+00:00", "ImagesLastUpdated": "2026-01-01T00:00:00+00:00",
                "NodeID": f"N{key}", "OriginalSizes": sum(len(i["data"]) for i in album["images"]),
                "TotalSizes": sum(len(i["data"]) for i in album["images"]), "ImageCount": len(album["images"]),
                "UrlPath": url_path, "CanShare": True, "HasDownloadPassword": False, "Packages": False,
                "Uri": f"/api/v2/album/{key}", "WebUri": f"https://{self.nickname}.smugmug.com{quote(url_path)}",
                "UriDescription": "Album by key", "Uris": uris, "ResponseLevel": "Full"}

    def image_document(self, request, image, album=True):
        key, serial, name = image["ImageKey"], image["serial"], image["FileName"]
        own = f"/api/v2/image/{key}-{serial}"
        uri = f"/api/v2/album/{image['album']}/image/{key}-{serial}" if album else own
        stem = quote(name.rpartition(".")[0] or name)
        extension = extension_of(name) or "jpg"
        uris = {entry: self.uri(request, f"{own}!{entry[0].lower()}{entry[1:]}", entry) for entry in IMAGE_URIS}
        uris["Image"] = self.uri(request, own, "Image", "Image by key")
        if image["video"] and self.link_largest_video:
            uris["LargestVideo"] = self.uri(request, f"{own}!largestvideo", "LargestVideo", "Largest video")
        document = {"Title": "", "Caption": "", "Keywords": "", "KeywordArray": [], "Watermark": "No",
                    "Latitude": "0.00000000000000", "Longitude": "0.00000000000000", "Altitude": 0,
                    "Hidden": False, "ThumbnailUrl": f"{self.url}/photos/{key}/{serial}/Th/{stem}-Th.jpg",
                    "FileName": name, "Processing": image["processing"], "UploadKey": str(9000000 + image["number"]),
                    "Date": image["date"], "DateTimeUploaded": image["date"], "DateTimeOriginal": image["date"],
                    "Format": "MP4" if image["video"] else ("JPG" if extension == "jpeg" else extension.upper()),
                    "OriginalHeight": 3024, "OriginalWidth": 4032, "OriginalSize": len(image["data"]),
                    "LastUpdated": image["date"], "Collectable": True, "IsArchive": False,
                    "IsVideo": image["video"], "ComponentFileTypes": {"Video" if image["video"] else "Image":
                                                                      [extension]},
                    "CanEdit": True, "CanBuy": True, "Protected": False, "EZProject": False, "Watermarked": False,
                    "ImageKey": key, "Serial": serial, "CanShare": True, "Comments": True, "ShowKeywords": True,
                    "FormattedValues": {"Caption": {"html": "", "text": ""},
                                        "FileName": {"html": name, "text": name}},
                    "PreferredDisplayFileExtension": extension.upper(), "Uri": uri,
                    "WebUri": f"https://{self.nickname}.smugmug.com/i-{key}",
                    "UriDescription": "Image from album" if album else "Image by key", "Uris": uris,
                    "Movable": True, "Origin": "Album"}
        if image["video"]:
            document.update(Duration=12.5, VideoLength=12)
        downloadable = self.albums[image["album"]]["AllowDownloads"]
        if image["archived"] and downloadable:
            # a video's archive is its original, though the path ends in -D.jpg as upstream
            suffix = "jpg" if image["video"] else extension
            document.update(ArchivedSize=len(image["data"]),
                            ArchivedUri=f"{self.url}/photos/{key}/{serial}/D/{stem}-D.{suffix}")
            if image["archived"] != "no-md5":
                document["ArchivedMD5"] = hashlib.md5(image["data"]).hexdigest()
        return document

    def paged(self, request, path, key, items):
        start = int(request.query.get("start", 1) or 1)
        count = max(int(request.query.get("count", 10) or 10), 1)
        chunk = items[max(start, 1) - 1:max(start, 1) - 1 + count]
        total = len(items)

        def page(first):
            return f"{path}?start={first}&count={count}"

        # LastPage as upstream computes it: on an empty listing its start is negative.
        pages = {"Total": total, "Start": start, "Count": len(chunk), "RequestedCount": count,
                 "FirstPage": page(1), "LastPage": page((total - 1) // count * count + 1)}
        if (start - 1) % count:
            pages["Misaligned"] = True
        if start > 1:
            pages["PrevPage"] = page(max(1, start - count))
        if len(chunk) == count or self.endless_next_page:  # a full page offers a next one, even past Total
            pages["NextPage"] = page(start + count)
        response = {"Uri": request.raw_path, "Locator": key, "LocatorType": "Objects",
                    "UriDescription": "", "EndpointType": key, "Pages": pages}
        if chunk:
            response[key] = chunk  # on an empty listing the key is ABSENT, not []
        return self.envelope(request, response)

    def download(self, path):
        _, kind, key, _rest = path.split("/", 3)
        image = self.images.get(key)
        downloadable = image and self.albums[image["album"]]["AllowDownloads"] and image["archived"]
        if not image or (kind == "photos" and not downloadable) or (kind == "videos" and not image["video"]):
            return Response(404, b"Not Found", content_type="text/plain")
        data = image["data"] if kind == "photos" else image["reencoded"]
        return Response(200, data, content_type="application/octet-stream")

    def upload(self, request):
        """One POST to upload.smugmug.com: a new image in X-Smug-AlbumUri, or with
        X-Smug-ImageUri a replacement of that image's bytes (its key and name stay)."""
        headers = request.headers
        name = unquote(headers.get("X-Smug-FileName") or "upload.jpg")
        album_uri = headers.get("X-Smug-AlbumUri", "")
        album_key = album_uri.rsplit("/", 1)[-1]
        digest = hashlib.md5(request.body).digest()
        logged = {"album": self.albums.get(album_key, {}).get("UrlPath", album_uri), "file_name": name,
                  "size": len(request.body), "md5": digest.hex(), "replaced": None}

        def fail(code, message):
            with self.lock:
                self.upload_log.append(dict(logged, stat="fail", message=message))
            return json_response({"stat": "fail", "method": "smugmug.images.upload", "code": code,
                                  "message": message})

        if headers.get("X-Smug-ResponseType") != "JSON" or headers.get("X-Smug-Version") != "v2":
            return fail(5, "system error: X-Smug-ResponseType and X-Smug-Version are required")
        if not album_uri.startswith("/api/v2/album/") or album_key not in self.albums:
            return fail(4, "invalid album")
        sent = headers.get("Content-MD5")
        if sent is not None and self.content_md5 != "ignore":
            accepted = {"base64": [base64.b64encode(digest).decode()], "hex": [digest.hex()],
                        "either": [base64.b64encode(digest).decode(), digest.hex()]}[self.content_md5]
            if sent not in accepted:
                return fail(5, "inconsistent MD5")
        replacing = headers.get("X-Smug-ImageUri")
        with self.lock:
            if replacing:
                image = self.image_by_part(replacing.rsplit("/", 1)[-1])
                if not image or image["album"] != album_key:
                    return fail(4, "invalid image")
                image.update(data=request.body, archived=True, reencoded=b"re-encoded:" + request.body)
                logged.update(file_name=image["FileName"], replaced=image["ImageKey"])
                key = image["ImageKey"]
            else:
                key = self.add_image(album_key, name, request.body)
            self.upload_log.append(dict(logged, stat="ok"))
            serial = self.images[key]["serial"]
        return json_response({"stat": "ok", "method": "smugmug.images.upload",
                              "Image": {"StatusImageReplaceUri": None, "ImageUri": f"/api/v2/image/{key}-{serial}",
                                        "AlbumImageUri": f"/api/v2/album/{album_key}/image/{key}-{serial}",
                                        "URL": f"https://{self.nickname}.smugmug.com/i-{key}"}})
