"""One harness per endpoint for the conformance suites.

Each harness starts the service (a directory, the loopback S3 server, a fake), seeds
it through the service's own side, and builds the endpoint the way syncer does: a
policy file, the credentials file, the factory. A capability a harness lacks is a
`skip` string with its reason. Adding an endpoint is one harness class here and its
name in FILE_HARNESSES or MIRROR_HARNESSES. The fixtures: `file_harness` (the Endpoint
contract), `mirror_harness` (MirrorEndpoint) and `harness` (every endpoint, for what
the two contracts share).
"""

import hashlib
import uuid

import pytest

from syncer.endpoints.base import Endpoint, MirrorEndpoint
from syncer.endpoints.factory import build_endpoint
from syncer.endpoints.git import local_refs, refs_digest
from syncer.policy.load import load_policy_file
from tests.fakes import bunny, dnsimple, gitlab, smugmug
from tests.support import write_policy, write_secret

FAST_RETRY = {"attempts": 4, "base_delay": 0.01, "max_delay": 0.05}

# What every file endpoint is seeded with: a subfolder, a space, non-ASCII, an empty file.
SEED = {
    "Album One/first photo.jpg": b"first photo bytes",
    "Album One/second.jpg": b"second photo, a bit longer" * 50,
    "Album One/caf\u00e9.png": b"\x89PNG fake",
    "Album One/empty.txt": b"",
}


def policy_for(tmp_path, authority, credentials_text=None):
    """Write a policy (and its credentials file) and load it as syncer does."""
    local = tmp_path / "local"
    local.mkdir(exist_ok=True)
    document = {"path": str(local), "authority": dict(authority)}
    if credentials_text is not None:
        write_secret(tmp_path / "credentials.env", credentials_text)
        document["authority"]["credentials"] = str(tmp_path / "credentials.env")
    path = write_policy(tmp_path / "policies", "dataset", document)
    policy, problems = load_policy_file(path, check_paths=False)
    assert policy and not problems, problems
    return policy


class Harness:
    """What the suites need of one endpoint. A subclass sets `name` (the authority
    type), `algorithm` (its native checksum) and `contract`, implements start(), put(),
    exists() and seed_hostile(), and says how credentials are refused (`refused`: the
    key the message names and a credentials text the service refuses) and where a 429
    can be injected into its fake (`rate_limited`), or why it cannot (the *_skip texts)."""

    name = algorithm = ""
    contract = Endpoint
    fake = refused = rate_limited = None
    hostile_skip = credentials_skip = rate_limit_skip = None

    def __init__(self, request, tmp_path):
        self.request = request
        self.tmp_path = tmp_path
        self.authority, self.credentials = self.start()

    def policy(self, credentials=None):
        return policy_for(self.tmp_path, self.authority, credentials or self.credentials)

    def endpoint(self, dry_run=False, credentials=None):
        return build_endpoint(self.policy(credentials), dry_run=dry_run, retry=FAST_RETRY)

    def expected(self):
        """{path: bytes, or the precomputed checksum} the listing must show."""
        return dict(SEED)

    def seed(self):
        for path, data in SEED.items():
            self.put(path, data)

    def checksum_of(self, data):
        return hashlib.new(self.algorithm, data).hexdigest()

    def bad_credentials(self):
        key, text = self.refused
        return self.endpoint(credentials=text), key

    def inject_rate_limit(self):
        self.fake.inject(429, headers={"Retry-After": "1"}, path_contains=self.rate_limited)
        return self.rate_limited

    def close(self):
        if self.fake:
            self.fake.stop()

    def seed_videos(self):
        """Put two videos at the authority; return {path: bytes a pull brought home}.
        To a file store a video is a file; SmugMug overrides this."""
        videos = {"Album One/clip.mov": b"a video with its original kept" * 40,
                  "Album One/phone.mov": b"another video" * 40}
        for path, data in videos.items():
            self.put(path, data)
        return videos


class LocalHarness(Harness):
    name, algorithm = "local", "sha256"
    hostile_skip = "a filesystem cannot hold '..', absolute or NUL names"
    credentials_skip = "a local directory has no credentials"
    rate_limit_skip = "a local directory has no rate limit"

    def start(self):
        self.root = self.tmp_path / "authority"
        self.root.mkdir()
        return {"type": "local", "path": str(self.root)}, None

    def put(self, path, data):
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_bytes(data)

    def exists(self, path):
        return (self.root / path).exists()


class S3Harness(Harness):
    name, algorithm = "s3", "md5"
    credentials_skip = "the loopback S3 server (moto) accepts any credentials"
    rate_limit_skip = "the loopback S3 server cannot be told to answer 429"

    def start(self):
        server = self.request.getfixturevalue("s3_server")
        self.client, self.bucket, self.prefix = server.client(), f"conformance-{uuid.uuid4().hex[:12]}", "data/"
        self.client.create_bucket(Bucket=self.bucket)
        return ({"type": "s3", "bucket": self.bucket, "prefix": self.prefix, "endpoint_url": server.url},
                server.credentials_text())

    def put(self, path, data):
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + path, Body=data)

    def exists(self, path):
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + path)
        return any(item["Key"] == self.prefix + path for item in answer.get("Contents", []))

    def seed_hostile(self):
        self.put("../escape.txt", b"outside")
        return ["../escape.txt"]


class SmugMugHarness(Harness):
    name, algorithm = "smugmug", "md5"
    refused = ("SMUGMUG_TOKEN", smugmug.credentials_text(dict(smugmug.CREDENTIALS, SMUGMUG_TOKEN="revoked-token-xyz")))
    rate_limited = "!albums"

    def start(self):
        self.fake = smugmug.FakeSmugMug().start()
        self.album = self.fake.add_album("/Album One")
        self.fake.add_album("/Empty Album")  # its !images has no AlbumImage key at all
        return ({"type": "smugmug", "api_url": self.fake.url, "upload_url": self.fake.url + "/"},
                smugmug.credentials_text(smugmug.CREDENTIALS))

    def put(self, path, data):
        album_path, _, name = path.rpartition("/")
        album = self.fake.album_by_path("/" + album_path) or self.fake.add_album("/" + album_path)
        self.fake.add_image(album, name, data)

    def exists(self, path):
        album_path, _, name = path.rpartition("/")
        album = self.fake.album_by_path("/" + album_path)
        return bool(album) and any(image["FileName"] == name for image in self.fake.albums[album]["images"])

    def seed_videos(self):
        """One video with its archive (the original), one without: that one a pull
        brings home as SmugMug's MP4 re-encoding, which has no checksum upstream."""
        self.fake.add_image(self.album, "clip.mov", b"a video with its original kept" * 40)
        self.fake.add_image(self.album, "phone.mov", b"an original SmugMug no longer offers", archived=False,
                            reencoded=b"SmugMug's MP4 encoding" * 40)
        return {"Album One/clip.mov": b"a video with its original kept" * 40,
                "Album One/phone.mov": b"SmugMug's MP4 encoding" * 40}

    def seed_hostile(self):
        self.fake.add_image(self.album, "../../etc/passwd", b"evil")
        self.fake.add_image(self.fake.add_album("/../outside"), "x.jpg", b"evil")
        return ["Album One/../../etc/passwd", "../outside/x.jpg"]


class BunnyHarness(Harness):
    name, algorithm = "bunnycdn", "sha256"
    refused = ("BUNNY_ACCESS_KEY", "BUNNY_ACCESS_KEY=wrong-zone-password\n")
    rate_limited = "/files/backup/"

    def start(self):
        self.fake = bunny.FakeBunny(zone="files").start()
        return ({"type": "bunnycdn", "zone": "files", "path": "backup", "endpoint": self.fake.url},
                f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")

    def put(self, path, data):
        self.fake.put_file(f"backup/{path}", data)

    def exists(self, path):
        return f"backup/{path}" in self.fake.files

    def seed_hostile(self):
        self.fake.add_raw_entry("backup", "..", b"evil")
        self.fake.add_raw_entry("backup/Album One", "a/../../b", b"evil")
        return ["..", "Album One/a/../../b"]


class GitLabHarness(Harness):
    name, algorithm, contract = "gitlab", "sha256", MirrorEndpoint
    refused = ("GITLAB_TOKEN", "GITLAB_TOKEN=glpat-revoked\n")
    rate_limited = "/groups/"

    def start(self):
        self.fake = gitlab.FakeGitLab(self.tmp_path / "gitlab-server").start()
        return {"type": "gitlab", "url": self.fake.url, "groups": ["team"]}, f"GITLAB_TOKEN={gitlab.TOKEN}\n"

    def seed(self):
        tool = self.fake.add_project("team", "tool")
        self.fake.commit(tool, {"README.md": "tool"})
        self.fake.tag(tool, "v1.0")
        self.fake.commit(self.fake.add_project("team/platform", "service"), {"main.py": "print(1)"})
        self.fake.add_project("team", "empty")
        self.fake.add_project("elsewhere", "not-ours")

    def expected(self):
        """{path: digest of the branches and tags}: what git reads in the service's own repositories."""
        return {f"{project['path_with_namespace']}.git": refs_digest(local_refs(self.fake.repository(number)))
                for number, project in self.fake.projects.items() if project["path_with_namespace"].startswith("team/")}

    def change(self, path):
        """Commit upstream to the project `path`."""
        self.fake.commit(self.fake.find_project(path), {"CHANGES": "more"})

    def seed_hostile(self):
        self.fake.add_project("team/../..", "escape", repository=False)
        return ["team/../../escape.git"]


class DNSimpleHarness(Harness):
    """Zones as documents: the listing's checksums are digests of what the zones say
    (syncer.endpoints.dnsimple), so `expected` gives them precomputed from the fake's
    own rendering of the records."""

    name, algorithm = "dnsimple", "sha256"
    refused = ("DNSIMPLE_TOKEN", dnsimple.credentials_text("revoked-dnsimple-token"))
    rate_limited = "/zones"

    def start(self):
        self.fake = dnsimple.FakeDNSimple().start()
        return ({"type": "dnsimple", "api_url": self.fake.url, "zones": ["example.com", "*.org"]},
                dnsimple.credentials_text())

    def seed(self):
        self.fake.add_zone("example.com")
        self.fake.add_record("example.com", "www", "A", "192.0.2.7", ttl=600)
        self.fake.add_record("example.com", "", "MX", "mx.example.net", priority=10)
        self.fake.add_record("example.com", "caf\u00e9", "TXT", "v=spf1 -all \u2713")
        self.fake.add_zone("example.org")
        self.fake.add_zone("not-selected.net")

    def expected(self):
        from syncer.endpoints.dnsimple import ZONE_DOCUMENTS, render_document

        found = {}
        for name in ("example.com", "example.org"):
            zone = self.fake.zones[name]
            found[f"{name}.json"] = ZONE_DOCUMENTS.digest(f"{name}.json",
                                                          render_document(name, list(zone["records"].values())))
            found[f"{name}.zone"] = ZONE_DOCUMENTS.digest(f"{name}.zone", self.fake.zone_file(zone).encode())
        return found

    def exists(self, path):
        return path.removesuffix(".json") in self.fake.zones

    def seed_hostile(self):
        self.fake.add_raw_zone("../escape.org")
        self.fake.add_raw_zone("a/../../b.org")
        return ["../escape.org.json", "../escape.org.zone", "a/../../b.org.json", "a/../../b.org.zone"]


FILE_HARNESSES = (LocalHarness, S3Harness, SmugMugHarness, BunnyHarness, DNSimpleHarness)
MIRROR_HARNESSES = (GitLabHarness,)


def started(harness_class, request, tmp_path):
    built = harness_class(request, tmp_path)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(params=FILE_HARNESSES, ids=lambda harness_class: harness_class.name)
def file_harness(request, tmp_path):
    """Every endpoint of files (the Endpoint contract)."""
    yield from started(request.param, request, tmp_path)


@pytest.fixture(params=MIRROR_HARNESSES, ids=lambda harness_class: harness_class.name)
def mirror_harness(request, tmp_path):
    """Every service of git repositories (the MirrorEndpoint contract)."""
    yield from started(request.param, request, tmp_path)


@pytest.fixture(params=FILE_HARNESSES + MIRROR_HARNESSES, ids=lambda harness_class: harness_class.name)
def harness(request, tmp_path):
    """Every endpoint, for what both contracts share: describing, listing, failing."""
    yield from started(request.param, request, tmp_path)
