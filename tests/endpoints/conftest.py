"""One harness per endpoint for the conformance suite.

Each harness seeds the authoritative copy through the service's own side (the
filesystem, boto3 against the loopback S3 server, the fakes' state), and builds the
endpoint the way syncer does: a policy file, the credentials file, the factory.
A capability a harness lacks is a `skip` string with its reason.
"""

import hashlib
import uuid

import pytest

from syncer.endpoints.factory import build_endpoint
from syncer.policy.load import load_policy_file
from tests.fakes import bunny, gitlab, smugmug
from tests.support import write_policy, write_secret

NAMES = ("local", "s3", "smugmug", "bunnycdn", "gitlab")
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
    name = ""
    hostile_skip = None
    credentials_skip = None
    rate_limit_skip = None

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    def endpoint(self, dry_run=False, **authority_overrides):
        return build_endpoint(self.policy(**authority_overrides), dry_run=dry_run, retry=FAST_RETRY)

    def expected(self):
        """{path: bytes or None} the listing must show."""
        return dict(SEED)

    def seed(self):
        for path, data in SEED.items():
            self.put(path, data)

    def checksum_of(self, data):
        return hashlib.new(self.algorithm, data).hexdigest()

    def seed_videos(self):
        """Put two videos at the authority; return {path: bytes a pull brought home}.
        To a file store a video is a file; SmugMug overrides this."""
        videos = {"Album One/clip.mov": b"a video with its original kept" * 40,
                  "Album One/phone.mov": b"another video" * 40}
        for path, data in videos.items():
            self.put(path, data)
        return videos


class LocalHarness(Harness):
    name = "local"
    algorithm = "sha256"
    hostile_skip = "a filesystem cannot hold '..', absolute or NUL names"
    credentials_skip = "a local directory has no credentials"
    rate_limit_skip = "a local directory has no rate limit"

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.root = tmp_path / "authority"
        self.root.mkdir()

    def policy(self):
        return policy_for(self.tmp_path, {"type": "local", "path": str(self.root)})

    def put(self, path, data):
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def exists(self, path):
        return (self.root / path).exists()


class S3Harness(Harness):
    name = "s3"
    algorithm = "md5"
    credentials_skip = "the loopback S3 server (moto) accepts any credentials"
    rate_limit_skip = "the loopback S3 server cannot be told to answer 429"

    def __init__(self, tmp_path, server):
        super().__init__(tmp_path)
        self.server = server
        self.client = server.client()
        self.bucket = f"conformance-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=self.bucket)
        self.prefix = "data/"

    def policy(self):
        return policy_for(self.tmp_path, {"type": "s3", "bucket": self.bucket, "prefix": self.prefix,
                                          "endpoint_url": self.server.url}, self.server.credentials_text())

    def put(self, path, data):
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + path, Body=data)

    def exists(self, path):
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + path)
        return any(item["Key"] == self.prefix + path for item in answer.get("Contents", []))

    def seed_hostile(self):
        self.put("../escape.txt", b"outside")
        return ["../escape.txt"]


class SmugMugHarness(Harness):
    name = "smugmug"
    algorithm = "md5"

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.fake = smugmug.FakeSmugMug().start()
        self.album = self.fake.add_album("/Album One")
        self.fake.add_album("/Empty Album")  # its !images has no AlbumImage key at all

    def policy(self, credentials=smugmug.CREDENTIALS):
        return policy_for(self.tmp_path, {"type": "smugmug", "api_url": self.fake.url,
                                          "upload_url": self.fake.url + "/"}, smugmug.credentials_text(credentials))

    def endpoint(self, dry_run=False, credentials=smugmug.CREDENTIALS):
        return build_endpoint(self.policy(credentials), dry_run=dry_run, retry=FAST_RETRY)

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
        album = self.fake.add_album("/../outside")
        self.fake.add_image(album, "x.jpg", b"evil")
        return ["Album One/../../etc/passwd", "../outside/x.jpg"]

    def bad_credentials(self):
        return self.endpoint(credentials=dict(smugmug.CREDENTIALS, SMUGMUG_TOKEN="revoked-token-xyz")), \
            "SMUGMUG_TOKEN"

    def inject_rate_limit(self):
        self.fake.inject(429, headers={"Retry-After": "1"}, path_contains="!albums")
        return "!albums"

    def close(self):
        self.fake.stop()


class BunnyHarness(Harness):
    name = "bunnycdn"
    algorithm = "sha256"

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.fake = bunny.FakeBunny(zone="files").start()

    def policy(self, key=bunny.ACCESS_KEY):
        return policy_for(self.tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup",
                                          "endpoint": self.fake.url}, f"BUNNY_ACCESS_KEY={key}\n")

    def endpoint(self, dry_run=False, key=bunny.ACCESS_KEY):
        return build_endpoint(self.policy(key), dry_run=dry_run, retry=FAST_RETRY)

    def put(self, path, data):
        self.fake.put_file(f"backup/{path}", data)

    def exists(self, path):
        return f"backup/{path}" in self.fake.files

    def seed_hostile(self):
        self.fake.add_raw_entry("backup", "..", b"evil")
        self.fake.add_raw_entry("backup/Album One", "a/../../b", b"evil")
        return ["..", "Album One/a/../../b"]

    def bad_credentials(self):
        return self.endpoint(key="wrong-zone-password"), "BUNNY_ACCESS_KEY"

    def inject_rate_limit(self):
        self.fake.inject(429, headers={"Retry-After": "1"}, path_contains="/files/backup/")
        return "/files/backup/"

    def close(self):
        self.fake.stop()


class GitLabHarness(Harness):
    name = "gitlab"
    algorithm = "sha256"

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.fake = gitlab.FakeGitLab(tmp_path / "gitlab-server").start()

    def policy(self, token=gitlab.TOKEN):
        return policy_for(self.tmp_path, {"type": "gitlab", "url": self.fake.url, "groups": ["team"]},
                          f"GITLAB_TOKEN={token}\n")

    def endpoint(self, dry_run=False, token=gitlab.TOKEN):
        return build_endpoint(self.policy(token), dry_run=dry_run, retry=FAST_RETRY)

    def seed(self):
        tool = self.fake.add_project("team", "tool")
        self.fake.commit(tool, {"README.md": "tool"})
        self.fake.tag(tool, "v1.0")
        deep = self.fake.add_project("team/platform", "service")
        self.fake.commit(deep, {"main.py": "print(1)"})
        self.fake.add_project("team", "empty")
        self.fake.add_project("elsewhere", "not-ours")

    def expected(self):
        from syncer.endpoints.git import refs_digest

        expected = {}
        for project_id, project in self.fake.projects.items():
            if project["namespace"]["full_path"].split("/")[0] != "team":
                continue
            branches, tags = self.fake.refs(project_id)
            refs = {f"refs/heads/{name}": sha for name, sha in branches.items()}
            refs.update({f"refs/tags/{name}": target for name, (target, _) in tags.items()})
            expected[project["path_with_namespace"] + ".git"] = refs_digest(refs)
        return expected

    def seed_hostile(self):
        self.fake.add_project("team/../..", "escape", repository=False)
        return ["team/../../escape.git"]

    def bad_credentials(self):
        return self.endpoint(token="glpat-revoked"), "GITLAB_TOKEN"

    def inject_rate_limit(self):
        self.fake.inject(429, headers={"Retry-After": "1"}, path_contains="/groups/")
        return "/groups/"

    def close(self):
        self.fake.stop()


@pytest.fixture(params=NAMES)
def harness(request, tmp_path):
    name = request.param
    if name == "local":
        built = LocalHarness(tmp_path)
    elif name == "s3":
        built = S3Harness(tmp_path, request.getfixturevalue("s3_server"))
    elif name == "smugmug":
        built = SmugMugHarness(tmp_path)
    elif name == "bunnycdn":
        built = BunnyHarness(tmp_path)
    else:
        built = GitLabHarness(tmp_path)
    yield built
    getattr(built, "close", lambda: None)()

