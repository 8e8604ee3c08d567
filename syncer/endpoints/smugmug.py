"""SmugMug (API v2, OAuth 1.0a HMAC-SHA1 via requests-oauthlib) as the authoritative copy.

Walk `!authuser` -> `!albums` (filtered by the policy's UrlPath globs) -> `!images`,
following `Pages.NextPage`. Every item's identity, and its local name, is
`<UrlPath>/<FileName>`; a file name used twice in one album gets `~<ImageKey>` before
its extension on all but the first (by upload date). The identity never depends on a
checksum, so a restore can tell present from absent for items that have none.

`ArchivedMD5` is the checksum, for photos and for videos alike (a video's archive is
its original). A video without one is fetched through `!largestvideo`, SmugMug's own
re-encoding, and listed unverifiable; an item without any Archived* field offers
nothing to download and is listed unverifiable too, never as verified.
"""

import base64
import os
from urllib.parse import quote

from syncer.endpoints.base import Capabilities, Entry, check_relative_path
from syncer.endpoints.http import ResponseStream, send
from syncer.errors import AuthenticationError, EndpointError
from syncer.index.exclude import glob_to_regex
from syncer.index.hashing import FileChanged, hash_file
from syncer.verdict import CHANGED, NOTHING_TO_DOWNLOAD, Copy, judge

DEFAULT_API_URL = "https://api.smugmug.com"
DEFAULT_UPLOAD_URL = "https://upload.smugmug.com/"
PAGE_SIZE = 100  # 100-200 is what SmugMug recommends; larger pages are slow upstream
CREDENTIAL_KEYS = ("SMUGMUG_API_KEY", "SMUGMUG_API_SECRET", "SMUGMUG_TOKEN", "SMUGMUG_TOKEN_SECRET")
# Which credential an oauth_problem points at, for the one-line 401 message.
OAUTH_PROBLEM_KEYS = {
    "consumer_key_unknown": "SMUGMUG_API_KEY",
    "consumer_key_rejected": "SMUGMUG_API_KEY",
    "token_rejected": "SMUGMUG_TOKEN",
    "token_revoked": "SMUGMUG_TOKEN",
    "token_expired": "SMUGMUG_TOKEN",
    "signature_invalid": "SMUGMUG_API_SECRET and SMUGMUG_TOKEN_SECRET",
}
# ArchivedMD5, ArchivedSize and ArchivedUri are absent together when downloads are off
# or the album is protected: there is nothing to fetch, so nothing to verify either.
NO_ORIGINAL = NOTHING_TO_DOWNLOAD + "SmugMug offers no original"


def uri_of(value):
    """`Uris.X` is an object with a `Uri` unless `_shorturis` was sent; accept both."""
    if isinstance(value, dict):
        return value.get("Uri")
    return value if isinstance(value, str) else None


def own_uri(image):
    """The image's own Uri as the answer gave it (with its real serial, never built)."""
    return uri_of((image.get("Uris") or {}).get("Image")) or image.get("Uri")


def video_note(image, video):
    """Why a video without an archive is unverifiable, and whether the bytes SmugMug
    serves are of another format than its FileName says (MP4 for a .mov)."""
    served = (video.get("Ext") or "mp4").lower().lstrip(".")
    stem, dot, named = (image.get("FileName") or "").rpartition(".")
    note = f"video: SmugMug offers only its own {served.upper()} re-encoding, no original to verify"
    if dot and stem and named.lower() != served:
        note += f" ({served.upper()} bytes under a .{named} name)"
    return note


def disambiguate(images):
    """Return one local file name per image of an album, unique within the album: the
    items' identity, which depends on no checksum.

    The first image (by Date, then ImageKey) keeps its FileName; later ones with the
    same name get "~ImageKey" before the extension, which never changes for them.
    """
    names = [image.get("FileName") or f"{image.get('ImageKey')}" for image in images]
    order = sorted(range(len(images)), key=lambda i: (images[i].get("Date") or "", images[i].get("ImageKey") or ""))
    seen, result = set(), list(names)
    for index in order:
        name = names[index]
        if name.casefold() in seen:
            stem, dot, extension = name.rpartition(".")
            key = images[index].get("ImageKey", str(index))
            name = f"{stem}~{key}.{extension}" if dot and stem else f"{name}~{key}"
        seen.add(name.casefold())
        result[index] = name
    return result


class SmugMugEndpoint:
    capabilities = Capabilities(checksum="md5")

    def __init__(self, credentials, nickname=None, albums=(), api_url=None, upload_url=None,
                 credentials_file=None):
        import requests
        from requests_oauthlib import OAuth1

        self.nickname = nickname
        self.album_patterns = [glob_to_regex(pattern)[0] for pattern in albums]
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.upload_url = upload_url or DEFAULT_UPLOAD_URL
        self.credentials_file = credentials_file
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.auth = OAuth1(credentials.get("SMUGMUG_API_KEY"), credentials.get("SMUGMUG_API_SECRET"),
                                   credentials.get("SMUGMUG_TOKEN"), credentials.get("SMUGMUG_TOKEN_SECRET"),
                                   signature_method="HMAC-SHA1", signature_type="AUTH_HEADER")
        self.albums_by_path = None

    def describe(self):
        who = f"smugmug:{self.nickname}" if self.nickname else "smugmug"
        return who if self.api_url == DEFAULT_API_URL else f"{who} at {self.api_url}"

    # --- requests -----------------------------------------------------------------

    def _credential_hint(self, problem=""):
        keys = OAUTH_PROBLEM_KEYS.get(problem, ", ".join(CREDENTIAL_KEYS))
        return f"{keys} in {self.credentials_file}" if self.credentials_file else keys

    def _request(self, method, url, **arguments):
        try:
            return send(self.session, method, url, self.describe(), self._credential_hint(), **arguments)
        except AuthenticationError as error:
            problem = str(error).partition("oauth_problem=")[2].split(")")[0].split("&")[0].split(";")[0]
            if problem in OAUTH_PROBLEM_KEYS:
                raise AuthenticationError(f"{self.describe()}: the credentials were refused (HTTP 401: "
                                          f"oauth_problem={problem}); check {self._credential_hint(problem)}")
            raise

    def _get_json(self, uri, **parameters):
        url = uri if uri.startswith(("http://", "https://")) else self.api_url + uri
        response = self._request("GET", url, params=parameters or None)
        try:
            document = response.json()
        except ValueError:
            raise EndpointError(f"{self.describe()}: {uri} did not answer JSON")
        if not isinstance(document, dict) or not isinstance(document.get("Response"), dict):
            raise EndpointError(f"{self.describe()}: {uri} answered an unexpected document", permanent=True)
        return document["Response"]

    def _paged(self, uri, key):
        """Yield the items under `key` of every page, following Pages.NextPage. Real
        answers offer a NextPage past Total after a full last page, and leave the key
        out (not []) on an empty page: stop on an empty page, on Start beyond Total, or
        on a NextPage already followed, so a listing never loops."""
        response = self._get_json(uri, start=1, count=PAGE_SIZE)
        followed = set()
        while True:
            items = response.get(key) or []
            yield from items
            pages = response.get("Pages") or {}
            next_page, start, total = pages.get("NextPage"), pages.get("Start"), pages.get("Total")
            beyond = isinstance(start, int) and isinstance(total, int) and start > total
            if not items or beyond or not next_page or next_page in followed:
                return
            followed.add(next_page)
            response = self._get_json(next_page)

    # --- listing --------------------------------------------------------------------

    def _resolve_nickname(self):
        if not self.nickname:
            user = self._get_json("/api/v2!authuser").get("User") or {}
            self.nickname = user.get("NickName")
            if not self.nickname:
                raise EndpointError(f"{self.describe()}: !authuser gave no NickName", permanent=True)
        return self.nickname

    def check_access(self):
        """`!authuser`: the OAuth signature and the access token are checked by it."""
        user = self._get_json("/api/v2!authuser").get("User") or {}
        if not user.get("NickName"):
            raise EndpointError(f"{self.describe()}: !authuser gave no NickName", permanent=True)
        return f"user {user['NickName']}"

    def _wanted(self, url_path):
        path = url_path.strip("/")
        return not self.album_patterns or any(pattern.fullmatch(path) for pattern in self.album_patterns)

    def _list_albums(self):
        """Return {UrlPath without slashes: album document} of the albums the policy selects."""
        nickname = self._resolve_nickname()
        albums = {}
        for album in self._paged(f"/api/v2/user/{quote(nickname)}!albums", "Album"):
            url_path = album.get("UrlPath") or ""
            if self._wanted(url_path):
                albums[url_path.strip("/")] = album
        self.albums_by_path = albums
        return albums

    def _album_images(self, album):
        uri = uri_of((album.get("Uris") or {}).get("AlbumImages")) or f"{album['Uri']}!images"
        return list(self._paged(uri, "AlbumImage"))

    def list_entries(self):
        for album_path, album in self._list_albums().items():
            images = self._album_images(album)
            for image, name in zip(images, disambiguate(images)):
                yield self._entry_for(album_path, image, name)

    def _entry_for(self, album_path, image, name):
        path = f"{album_path}/{name}" if album_path else name
        md5, size, url = image.get("ArchivedMD5"), image.get("ArchivedSize"), image.get("ArchivedUri")
        problem = check_relative_path(path) or ("'/' in FileName" if "/" in name else None)
        if problem:
            return Entry(path.replace("\x00", "?"), size, note=f"unsafe name: {problem}")
        if image.get("Processing"):
            return Entry(path, None, note="still being processed by SmugMug", ref=None)
        if md5 and url:  # a photo, or a video whose archive is its original (ArchivedSize == OriginalSize)
            return Entry(path, size, md5.lower(), "md5", ref={"url": url})
        if url:
            return Entry(path, size, note="SmugMug gives no ArchivedMD5 for this image", ref={"url": url})
        if image.get("IsVideo"):
            video = self._largest_video(image)
            if video.get("Url"):
                return Entry(path, None, note=video_note(image, video), ref={"url": video["Url"]})
        return Entry(path, None, note=NO_ORIGINAL, ref=None)

    def _largest_video(self, image):
        """SmugMug's own encoding of a video (`!largestvideo` on the image's own Uri)."""
        uri = uri_of((image.get("Uris") or {}).get("LargestVideo"))
        if not uri and own_uri(image):
            uri = f"{own_uri(image)}!largestvideo"
        if not uri:
            return {}
        try:
            return self._get_json(uri).get("LargestVideo") or {}
        except EndpointError as error:
            if error.permanent and not isinstance(error, AuthenticationError):
                return {}
            raise

    # --- reading and writing -----------------------------------------------------------

    def open_entry(self, entry):
        url = (entry.ref or {}).get("url") if isinstance(entry.ref, dict) else None
        if not url:
            raise EndpointError(f"{self.describe()}: {entry.path} has no download URL", permanent=True)
        return ResponseStream(self._request("GET", url, stream=True))

    def _find_album(self, album_path):
        albums = self.albums_by_path if self.albums_by_path is not None else self._list_albums()
        album = albums.get(album_path.strip("/"))
        if album is None:
            albums = self._list_albums()
            album = albums.get(album_path.strip("/"))
        if album is None:
            raise EndpointError(f"{self.describe()}: album /{album_path} does not exist (or is not selected "
                                f"by authority.albums); create it on SmugMug first", permanent=True)
        return album

    def _image_named(self, album, file_name):
        """The image of `album` whose identity (local name) is `file_name`, or None."""
        images = self._album_images(album)
        for image, name in zip(images, disambiguate(images)):
            if name == file_name:
                return image
        return None

    def write_entry(self, path, source, digests):
        """Upload `source` as `path`: a new image in its album, or, when an image holds
        that identity now, a replacement of its bytes (key and FileName kept), since
        SmugMug would otherwise keep both. Whether to upload at all is the caller's
        decision, made from the listing. Raise EndpointError unless `stat` is ok."""
        album_path, _, file_name = path.rpartition("/")
        album = self._find_album(album_path)
        try:
            md5 = digests.get("md5") or hash_file(source, ("md5",)).digests["md5"]
        except FileChanged:
            raise EndpointError(f"{self.describe()}: {source} changed while its MD5 was taken; {path} was not "
                                "uploaded", permanent=True) from None
        size = os.path.getsize(source)
        existing = self._image_named(album, file_name)
        replacing = own_uri(existing) if existing else None
        if existing:  # the upload's options update the image: keep its FileName, not our "~Key" name
            file_name = existing.get("FileName") or file_name
        # The docs say Content-MD5 is base64; some clients send hex and which one SmugMug
        # enforces is unconfirmed: on an MD5 complaint the upload is tried once in hex.
        answer = None
        for content_md5 in (base64.b64encode(bytes.fromhex(md5)).decode(), md5):
            answer = self._upload(path, source, album["Uri"], file_name, content_md5, replacing)
            if answer.get("stat") == "ok" or "md5" not in str(answer.get("message", "")).lower():
                break
        if answer.get("stat") != "ok":  # failures come as HTTP 200 with stat=fail
            raise EndpointError(f"{self.describe()}: the upload of {path} failed: "
                                f"{answer.get('message', 'unknown error')} (code {answer.get('code')})",
                                permanent=True)
        self._check_uploaded(path, answer, md5)
        return Entry(path, size, md5, "md5")

    def _upload(self, path, source, album_uri, file_name, content_md5, replacing=None):
        """POST one file to the upload endpoint (replacing the image at `replacing`, an
        image Uri, when given); return its JSON answer (stat ok or fail)."""
        headers = {"X-Smug-AlbumUri": album_uri, "X-Smug-ResponseType": "JSON", "X-Smug-Version": "v2",
                   "X-Smug-FileName": file_name if file_name.isascii() else quote(file_name),
                   "Content-MD5": content_md5,
                   # a content type keeps requests-oauthlib from reading the streamed body
                   "Content-Type": "application/octet-stream"}
        if replacing:
            headers["X-Smug-ImageUri"] = replacing
        with open(source, "rb") as body:
            response = self._request("POST", self.upload_url, data=body, headers=headers)
        try:
            answer = response.json()
        except ValueError:
            raise EndpointError(f"{self.describe()}: the upload of {path} answered no JSON")
        return answer if isinstance(answer, dict) else {"stat": "fail", "message": "unexpected answer"}

    def _check_uploaded(self, path, answer, md5):
        """Whatever SmugMug did with Content-MD5, compare the stored image's ArchivedMD5."""
        image_uri = (answer.get("Image") or {}).get("ImageUri")
        if not image_uri:
            return
        stored = (self._get_json(image_uri).get("Image") or {}).get("ArchivedMD5")
        if judge(Copy(digests={"md5": md5}), Copy(digests={"md5": stored and stored.lower()})).status == CHANGED:
            raise EndpointError(f"{self.describe()}: {path} arrived corrupted (ArchivedMD5 {stored}, "
                                f"the file's MD5 is {md5}); remove it on SmugMug", permanent=True)

    def delete_entry(self, path):
        album_path, _, file_name = path.rpartition("/")
        image = self._image_named(self._find_album(album_path), file_name)
        if image and image.get("Uri"):
            self._request("DELETE", self.api_url + image["Uri"])


# --- authorizing syncer (OAuth 1.0a, out of band) ------------------------------------

OAUTH_PATH = "/services/oauth/1.0a"
PERMISSIONS = ("read", "add", "modify")


def oauth_error(error, what, hint):
    """Turn a requests-oauthlib or requests failure into the project's error."""
    import requests
    from requests_oauthlib.oauth1_session import TokenMissing, TokenRequestDenied

    if isinstance(error, TokenRequestDenied):
        status = error.status_code
        if status in (400, 401, 403):
            return AuthenticationError(f"SmugMug refused {what} (HTTP {status}); check {hint}")
        return EndpointError(f"SmugMug: {what}: HTTP {status}")
    if isinstance(error, (TokenMissing, ValueError)):
        return EndpointError(f"SmugMug: {what}: the answer holds no token", permanent=True)
    if isinstance(error, requests.RequestException):
        return EndpointError(f"SmugMug: {what}: cannot connect ({error.__class__.__name__})")
    return error


def request_token(api_key, api_secret, api_url=None, permissions="read", key_hint="SMUGMUG_API_KEY"):
    """Step 1 and 2 of the flow: get a request token with oauth_callback=oob. Return
    (token, token secret, the authorize URL the user opens: Access=Full and Permissions
    as asked). Raise AuthenticationError when the key or secret is refused."""
    import requests
    from requests_oauthlib import OAuth1Session
    from requests_oauthlib.oauth1_session import TokenMissing, TokenRequestDenied

    base = (api_url or DEFAULT_API_URL).rstrip("/") + OAUTH_PATH
    session = OAuth1Session(api_key, client_secret=api_secret, callback_uri="oob")
    try:
        answer = session.fetch_request_token(f"{base}/getRequestToken", timeout=60)
    except (TokenRequestDenied, TokenMissing, ValueError, requests.RequestException) as error:
        raise oauth_error(error, "the API key or secret", f"{key_hint} and SMUGMUG_API_SECRET")
    url = session.authorization_url(f"{base}/authorize", Access="Full", Permissions=permissions.capitalize())
    return answer["oauth_token"], answer["oauth_token_secret"], url


def access_token(api_key, api_secret, token, token_secret, verifier, api_url=None):
    """Step 5: exchange the verified request token for the access token. Return (token,
    token secret). Raise AuthenticationError when the verifier is refused."""
    import requests
    from requests_oauthlib import OAuth1Session
    from requests_oauthlib.oauth1_session import TokenMissing, TokenRequestDenied

    base = (api_url or DEFAULT_API_URL).rstrip("/") + OAUTH_PATH
    session = OAuth1Session(api_key, client_secret=api_secret, resource_owner_key=token,
                            resource_owner_secret=token_secret, verifier=verifier)
    try:
        answer = session.fetch_access_token(f"{base}/getAccessToken", timeout=60)
    except (TokenRequestDenied, TokenMissing, ValueError, requests.RequestException) as error:
        raise oauth_error(error, "the verifier", "the 6-digit code SmugMug showed after you authorized syncer")
    return answer["oauth_token"], answer["oauth_token_secret"]
