"""syncer pull (and verify, run) against the loopback fakes, through the real CLI."""

import hashlib
import os

import pytest

from tests.fakes import bunny, gitlab, smugmug
from tests.support import run_syncer, write_policy, write_secret, write_tree


@pytest.fixture
def smugmug_fake():
    with smugmug.FakeSmugMug() as fake:
        yield fake


@pytest.fixture
def bunny_fake():
    with bunny.FakeBunny(zone="files") as fake:
        yield fake


@pytest.fixture
def gitlab_fake(tmp_path):
    with gitlab.FakeGitLab(tmp_path / "gitlab-server") as fake:
        yield fake


def site(tmp_path, authority, credentials, pull=None):
    """A policies folder with one dataset `data` whose local copy is tmp/local."""
    write_secret(tmp_path / "secrets" / "cloud.env", credentials)
    document = {"path": str(tmp_path / "local"), "authority": dict(authority, credentials="../secrets/cloud.env")}
    if pull is not None:
        document["pull"] = pull
    (tmp_path / "local").mkdir(exist_ok=True)
    write_policy(tmp_path / "policies", "data", document)
    return tmp_path / "policies", tmp_path / "state"


def by_path(report):
    return {entry["path"]: entry for entry in report["datasets"][0]["items"]}


def local_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_smugmug_pull_pages_filters_albums_keeps_duplicates_apart_and_is_stable(tmp_path, smugmug_fake):
    fake = smugmug_fake
    trip = fake.add_album("/Travel/Paris")
    fake.add_album("/Travel/Empty")  # no AlbumImage key at all
    other = fake.add_album("/Private/Diary")
    for number in range(105):  # more than one page of 100
        fake.add_image(trip, f"IMG_{number:04d}.jpg", b"photo %d" % number)
    fake.add_image(trip, "IMG_0001.jpg", b"another photo with the same name")
    fake.add_image(trip, "scan.jpg", b"no checksum upstream", archived="no-md5")
    fake.add_image(trip, "ghost.jpg", b"no archive at all", archived=False)
    fake.add_image(trip, "clip.mov", b"original video bytes", video=True)
    fake.add_image(trip, "phone.mov", b"only the re-encoded copy", video=True, archived=False)
    fake.add_image(other, "secret.jpg", b"not selected")
    policies, state = site(tmp_path, {"type": "smugmug", "api_url": fake.url, "upload_url": fake.url + "/",
                                      "albums": ["Travel/**"]}, smugmug.credentials_text())
    first = run_syncer("pull", "--json", policies=policies, state=state)
    assert first.exit_code == 0, first.output
    counts = first.json()["datasets"][0]["counts"]
    assert counts["downloaded"] == 107  # 105 + the duplicate name + the video with its archive
    local = tmp_path / "local"
    assert (local / "Travel/Paris/IMG_0001.jpg").read_bytes() == b"photo 1"
    duplicates = [name for name in os.listdir(local / "Travel/Paris") if name.startswith("IMG_0001~")]
    assert len(duplicates) == 1
    assert (local / "Travel/Paris" / duplicates[0]).read_bytes() == b"another photo with the same name"
    assert not (local / "Private").exists()
    items = by_path(first.json())
    assert items["Travel/Paris/scan.jpg"]["status"] == "unverifiable"
    assert (local / "Travel/Paris/scan.jpg").read_bytes() == b"no checksum upstream"
    assert items["Travel/Paris/clip.mov"]["status"] == "downloaded"  # checked: its archive is the original
    assert (local / "Travel/Paris/clip.mov").read_bytes() == b"original video bytes"
    assert items["Travel/Paris/phone.mov"]["status"] == "unverifiable"  # SmugMug's re-encoding only
    assert "MP4 bytes under a .mov name" in items["Travel/Paris/phone.mov"]["reason"]
    assert (local / "Travel/Paris/phone.mov").read_bytes() == b"re-encoded:only the re-encoded copy"
    assert items["Travel/Paris/ghost.jpg"]["status"] == "unverifiable"  # nothing to download
    assert not (local / "Travel/Paris/ghost.jpg").exists()
    assert not any(name.startswith(".syncer-tmp-") for name in local_files(local))

    downloads = fake.count_requests("GET", "/photos/")
    second = run_syncer("pull", "--json", policies=policies, state=state)
    assert second.exit_code == 0, second.output
    assert "downloaded" not in second.json()["datasets"][0]["counts"]
    assert fake.count_requests("GET", "/photos/") == downloads  # nothing downloaded again

    verify = run_syncer("verify", "--json", policies=policies, state=state)
    assert verify.exit_code == 0, verify.output  # ghost.jpg cannot be had at all: listed, never a finding
    report = verify.json()["datasets"][0]
    assert report["counts"]["ok"] == 107
    assert report["counts"]["unverifiable"] == 3
    assert report["counts"]["missing_local"] == 0
    reasons = {entry["path"]: entry.get("reason", "") for entry in report["items"]}
    assert "ArchivedMD5" in reasons["Travel/Paris/scan.jpg"]
    assert "re-encoding" in reasons["Travel/Paris/phone.mov"]
    assert "SmugMug offers no original" in reasons["Travel/Paris/ghost.jpg"]


def test_smugmug_images_with_no_original_are_listed_unverifiable_never_a_finding(tmp_path, smugmug_fake):
    protected = smugmug_fake.add_album("/Protected", allow_downloads=False)  # no Archived* on any image
    for name in ("a.jpg", "b.jpg", "c.png"):
        smugmug_fake.add_image(protected, name, name.encode() * 100)
    policies, state = site(tmp_path, {"type": "smugmug", "api_url": smugmug_fake.url}, smugmug.credentials_text())
    pulled = run_syncer("pull", "--json", policies=policies, state=state)
    assert pulled.exit_code == 0, pulled.output
    assert pulled.json()["datasets"][0]["counts"] == {"unverifiable": 3}
    assert local_files(tmp_path / "local") == []

    verify = run_syncer("verify", "--json", policies=policies, state=state)
    assert verify.exit_code == 0, verify.output
    report = verify.json()["datasets"][0]
    assert report["counts"] == {"ok": 0, "missing_local": 0, "extra_local": 0, "changed": 0, "unverifiable": 3}
    assert {item["path"]: (item["status"], item["reason"]) for item in report["items"]} == {
        f"Protected/{name}": ("unverifiable", "nothing to download: SmugMug offers no original")
        for name in ("a.jpg", "b.jpg", "c.png")}
    strict = run_syncer("verify", "--strict", policies=policies, state=state)
    assert strict.exit_code == 1, strict.output
    assert "SmugMug offers no original" in strict.stdout


def test_a_checksum_mismatch_is_downloaded_again_then_reported_and_never_replaces_a_good_file(
        tmp_path, bunny_fake):
    fake = bunny_fake
    fake.put_file("backup/flaky.bin", b"flaky but fine on the second try")
    fake.put_file("backup/broken.bin", b"the new version that always arrives corrupted")
    fake.corrupt = {"backup/flaky.bin": 1, "backup/broken.bin": 99}
    policies, state = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup", "endpoint": fake.url},
                           f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
    write_tree(tmp_path / "local", {"broken.bin": b"the good old version"})
    result = run_syncer("pull", "--json", policies=policies, state=state)
    assert result.exit_code == 1, result.output
    items = by_path(result.json())
    assert items["flaky.bin"]["status"] == "downloaded"
    assert items["broken.bin"]["status"] == "failed"
    assert "content differs (sha256)" in items["broken.bin"]["reason"]
    assert (tmp_path / "local/flaky.bin").read_bytes() == b"flaky but fine on the second try"
    assert (tmp_path / "local/broken.bin").read_bytes() == b"the good old version"
    assert local_files(tmp_path / "local") == ["broken.bin", "flaky.bin"]  # no temporary files left
    assert fake.count_requests("GET", "/broken.bin") == 3


def test_local_only_files_are_reported_or_moved_to_the_trash_and_hostile_names_refused(tmp_path, bunny_fake):
    fake = bunny_fake
    fake.put_file("backup/keep/a.txt", b"a")
    fake.add_raw_entry("backup", "..", b"escape attempt")
    fake.add_raw_entry("backup/keep", "../../../outside.txt", b"escape attempt")
    policies, state = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup", "endpoint": fake.url},
                           f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
    write_tree(tmp_path / "local", {"old/notes.txt": "only here"})
    reported = run_syncer("pull", "--json", policies=policies, state=state)
    assert reported.exit_code == 1, reported.output
    items = by_path(reported.json())
    assert items["old/notes.txt"]["status"] == "local_only"
    assert items[".."]["status"] == "refused"
    assert items["keep/../../../outside.txt"]["status"] == "refused"
    assert (tmp_path / "local/old/notes.txt").exists()
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path.parent / "outside.txt").exists()

    dry = run_syncer("pull", "--dry-run", "--json", policies=policies, state=state)
    assert by_path(dry.json())["old/notes.txt"]["status"] == "local_only"

    site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup", "endpoint": fake.url},
         f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n", pull={"delete": True})
    planned = run_syncer("pull", "--dry-run", "--json", policies=policies, state=state)
    assert by_path(planned.json())["old/notes.txt"]["status"] == "to_trash"
    assert (tmp_path / "local/old/notes.txt").exists()
    moved = run_syncer("pull", "--json", policies=policies, state=state)
    assert by_path(moved.json())["old/notes.txt"]["status"] == "trashed"
    assert not (tmp_path / "local/old/notes.txt").exists()
    trashed = list((state / "trash" / "data").glob("*/old/notes.txt"))
    assert len(trashed) == 1 and trashed[0].read_text() == "only here"


def test_dry_run_downloads_nothing(tmp_path, bunny_fake):
    bunny_fake.put_file("backup/a.txt", b"a")
    policies, state = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup",
                                      "endpoint": bunny_fake.url}, f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
    result = run_syncer("pull", "--dry-run", policies=policies, state=state)
    assert result.exit_code == 0, result.output
    assert "to download" in result.stdout and "a.txt" in result.stdout
    assert local_files(tmp_path / "local") == []


def test_refused_credentials_exit_3_with_one_line_naming_the_endpoint_and_key(tmp_path, bunny_fake):
    policies, state = site(tmp_path, {"type": "bunnycdn", "zone": "files", "endpoint": bunny_fake.url},
                           "BUNNY_ACCESS_KEY=not-the-zone-password\n")
    result = run_syncer("pull", policies=policies, state=state)
    assert result.exit_code == 3
    assert "BUNNY_ACCESS_KEY" in result.output and "cloud.env" in result.output and "bunnycdn:files" in result.output
    assert "not-the-zone-password" not in result.output
    assert "Traceback" not in result.output


def test_rate_limited_pull_waits_and_succeeds(tmp_path, bunny_fake):
    bunny_fake.put_file("backup/a.txt", b"a")
    bunny_fake.inject(429, times=1, headers={"Retry-After": "1"}, path_contains="/a.txt")
    policies, state = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup",
                                      "endpoint": bunny_fake.url}, f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
    result = run_syncer("pull", "--json", policies=policies, state=state)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "local/a.txt").read_bytes() == b"a"
    assert "rate limited" in result.stderr and "retrying in 1.0s" in result.stderr


def test_run_pulls_then_verifies(tmp_path, bunny_fake):
    bunny_fake.put_file("backup/dir/one.txt", b"one")
    bunny_fake.put_file("backup/two.txt", b"two")
    policies, state = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup",
                                      "endpoint": bunny_fake.url}, f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
    result = run_syncer("run", "--json", policies=policies, state=state)
    assert result.exit_code == 0, result.output
    report = result.json()
    assert report["pull"]["datasets"][0]["counts"]["downloaded"] == 2
    assert report["verify"]["datasets"][0]["counts"]["ok"] == 2


def gitlab_site(tmp_path, fake, token=gitlab.TOKEN, pull=None):
    return site(tmp_path, {"type": "gitlab", "url": fake.url, "groups": ["team"]}, f"GITLAB_TOKEN={token}\n", pull)


def test_gitlab_pull_mirrors_projects_and_verify_checks_refs_and_fsck(tmp_path, gitlab_fake):
    fake = gitlab_fake
    tool = fake.add_project("team", "tool")
    fake.commit(tool, {"README.md": "v1"})
    fake.tag(tool, "v1.0")
    main_sha = fake.refs(tool)[0]["main"]
    fake.set_ref(tool, "refs/merge-requests/1/head", main_sha)  # hidden from pushes, fetched by mirrors
    service = fake.add_project("team/platform", "service")
    fake.commit(service, {"app.py": "print(1)"})
    fake.add_project("team", "empty")
    policies, state = gitlab_site(tmp_path, fake)
    local = tmp_path / "local"

    first = run_syncer("pull", "--json", policies=policies, state=state)
    assert first.exit_code == 0, first.output
    assert {path: entry["status"] for path, entry in by_path(first.json()).items()} == {
        "team/tool.git": "cloned", "team/platform/service.git": "cloned", "team/empty.git": "cloned"}
    for mirror in ("team/tool.git", "team/platform/service.git", "team/empty.git"):
        config = (local / mirror / "config").read_text()
        assert gitlab.TOKEN not in config and "extraHeader" not in config
    assert gitlab.TOKEN not in first.output
    assert all(authorized for _, _, authorized in fake.git_requests)

    verify = run_syncer("verify", "--json", policies=policies, state=state)
    assert verify.exit_code == 0, verify.output
    assert verify.json()["datasets"][0]["counts"]["ok"] == 3

    fake.commit(tool, {"README.md": "v2"})
    fake.commit(tool, {"x": "y"}, branch="feature")
    changed = run_syncer("verify", "--json", policies=policies, state=state)
    assert changed.exit_code == 1
    items = by_path(changed.json())
    assert items["team/tool.git"]["status"] == "changed"
    assert "branch main" in items["team/tool.git"]["reason"]
    assert "branch feature missing here" in items["team/tool.git"]["reason"]

    second = run_syncer("pull", "--json", policies=policies, state=state)
    assert by_path(second.json())["team/tool.git"]["status"] == "updated"
    assert run_syncer("verify", policies=policies, state=state).exit_code == 0

    # A corrupted object in a mirror is a finding (git fsck), not "ok".
    pack = next((local / "team/platform/service.git/objects/pack").glob("*.pack"))
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    corrupted = run_syncer("verify", "--deep", "--json", policies=policies, state=state)
    assert corrupted.exit_code == 1
    entry = by_path(corrupted.json())["team/platform/service.git"]
    assert entry["status"] == "changed" and "fsck" in entry["reason"]


def test_gitlab_local_only_mirrors_are_extra_and_a_bad_token_names_the_key(tmp_path, gitlab_fake):
    fake = gitlab_fake
    project = fake.add_project("team", "tool")
    fake.commit(project, {"a": "b"})
    policies, state = gitlab_site(tmp_path, fake)
    assert run_syncer("pull", policies=policies, state=state).exit_code == 0
    os.rename(tmp_path / "local/team/tool.git", tmp_path / "local/team/gone.git")
    verify = run_syncer("verify", "--json", policies=policies, state=state)
    statuses = {path: entry["status"] for path, entry in by_path(verify.json()).items()}
    assert statuses == {"team/gone.git": "extra_local", "team/tool.git": "missing_local"}

    gitlab_site(tmp_path, fake, token="glpat-wrong-token")
    refused = run_syncer("pull", policies=policies, state=state)
    assert refused.exit_code == 3
    assert "GITLAB_TOKEN" in refused.stderr and "cloud.env" in refused.stderr
    assert "glpat-wrong-token" not in refused.output and "Traceback" not in refused.output


def test_the_folder_an_interrupted_clone_left_is_removed_by_the_next_pull_and_nothing_else(tmp_path, gitlab_fake):
    fake = gitlab_fake
    fake.commit(fake.add_project("team", "tool"), {"a": "b"})
    policies, state = gitlab_site(tmp_path, fake)
    local, outside = tmp_path / "local", write_tree(tmp_path / "outside", {"keep.txt": "mine"})
    left = write_tree(local / "team" / f".syncer-tmp-{'ab' * 16}", {"mirror.git/HEAD": "ref: refs/heads/main\n",
                                                                   "mirror.git/objects/pack/p.pack": "partial"})
    kept = [write_tree(local / "team" / ".syncer-clone-x1y2z3", {"mirror.git/HEAD": "an earlier version's"}),
            write_tree(local / "team" / f".syncer-tmp-{'AB' * 16}", {"f": "not the exact shape"}),
            write_tree(local / "notes" / ".syncer-tmpfoo", {"f": "a user's"})]
    (local / "team" / f".syncer-tmp-{'cd' * 16}").symlink_to(outside, target_is_directory=True)
    dry = run_syncer("pull", "--dry-run", policies=policies, state=state)
    assert dry.exit_code == 0, dry.output
    assert left.is_dir()  # a dry run removes nothing
    pulled = run_syncer("pull", "-v", policies=policies, state=state)
    assert pulled.exit_code == 0, pulled.output
    assert "removed 1 folder(s) left by an interrupted clone" in pulled.output
    assert "team/.syncer-clone-x1y2z3 is not a mirror" in pulled.output  # said, not removed
    assert not left.exists()
    assert all(path.is_dir() for path in kept) and (local / "team" / "tool.git" / "HEAD").is_file()
    assert (local / "team" / f".syncer-tmp-{'cd' * 16}").is_symlink()  # the link, not what it leads to
    assert (outside / "keep.txt").read_text() == "mine"


def test_gitlab_token_never_reaches_argv_or_config(tmp_path):
    from syncer.endpoints import git

    environment = git.auth_environment("https://gitlab.example.com", "glpat-secret-value")
    argv = git.clone_mirror_argv("https://gitlab.example.com/team/tool.git", "/srv/tool.git")
    assert not any("glpat" in part for part in argv + git.update_mirror_argv("/srv/x.git")
                   + git.push_refs_argv("/srv/x.git", "https://gitlab.example.com/team/tool.git"))
    assert environment["GIT_CONFIG_KEY_0"] == "http.https://gitlab.example.com/.extraHeader"
    assert environment["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    assert "refs/heads/*:refs/heads/*" in git.push_refs_argv("/srv/x.git", "u")
    assert "--mirror" not in git.push_refs_argv("/srv/x.git", "u")
    assert hashlib.sha256(b"").hexdigest() == git.refs_digest({})


def test_s3_pull_including_a_multipart_object_then_verify(tmp_path, s3_server):
    from boto3.s3.transfer import TransferConfig

    client = s3_server.client()
    client.create_bucket(Bucket="pull-source")
    client.put_object(Bucket="pull-source", Key="data/small.txt", Body=b"small")
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB in two 5 MiB parts: an ETag "...-2"
    (tmp_path / "big.bin").write_bytes(big)
    client.upload_file(str(tmp_path / "big.bin"), "pull-source", "data/big.bin",
                       Config=TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20))
    policies, state = site(tmp_path, {"type": "s3", "bucket": "pull-source", "prefix": "data",
                                      "endpoint_url": s3_server.url}, s3_server.credentials_text())
    pulled = run_syncer("pull", "--json", policies=policies, state=state)
    assert pulled.exit_code == 0, pulled.output
    items = by_path(pulled.json())
    assert items["small.txt"]["status"] == "downloaded"
    assert items["big.bin"]["status"] == "unverifiable" and "multipart" in items["big.bin"]["reason"]
    assert (tmp_path / "local/big.bin").read_bytes() == big
    verified = run_syncer("verify", "--json", policies=policies, state=state)
    assert verified.exit_code == 0, verified.output
    assert verified.json()["datasets"][0]["counts"]["ok"] == 2
