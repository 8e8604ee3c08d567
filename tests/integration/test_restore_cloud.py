"""restore --to cloud | s3://...: from a restic snapshot back into the authority,
uploading only what is missing or differs (real restic, the loopback fakes, moto)."""

import shutil

import pytest

from tests.fakes import bunny, gitlab, smugmug
from tests.integration.offsite_support import PASSWORD
from tests.support import require_tool, run_syncer, write_policy, write_secret


def site(tmp_path, authority, credentials):
    require_tool("restic")
    write_secret(tmp_path / "secrets" / "cloud.env", credentials)
    password = write_secret(tmp_path / "secrets" / "restic.pass", PASSWORD + "\n")
    (tmp_path / "local").mkdir(exist_ok=True)
    write_policy(tmp_path / "policies", "data", {
        "path": str(tmp_path / "local"), "authority": dict(authority, credentials="../secrets/cloud.env"),
        "offsite": {"repository": str(tmp_path / "repo"), "password_file": str(password),
                    "manifest_root": str(tmp_path / "manifest-root")}})
    return lambda *arguments: run_syncer(*arguments, policies=tmp_path / "policies", state=tmp_path / "state",
                                         env={"RESTIC_CACHE_DIR": str(tmp_path / "restic-cache")})


def pulled_and_pushed(syncer):
    pulled = syncer("pull")
    assert pulled.exit_code == 0, pulled.output
    pushed = syncer("push")
    assert pushed.exit_code == 0, pushed.output


def test_bunny_restore_uploads_only_what_is_missing_or_differs(tmp_path):
    with bunny.FakeBunny(zone="files") as fake:
        for name in ("a.txt", "dir/b.txt", "dir/c.txt"):
            fake.put_file(f"backup/{name}", name.encode() * 100)
        syncer = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup", "endpoint": fake.url},
                      f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        pulled_and_pushed(syncer)
        del fake.files["backup/dir/b.txt"]
        fake.files["backup/a.txt"] = b"overwritten upstream by mistake"

        planned = syncer("restore", "data", "--to", "cloud", "--dry-run", "--json")
        assert planned.exit_code == 0, planned.output
        assert planned.json()["counts"] == {"present": 1, "to_upload": 2}
        assert "backup/dir/b.txt" not in fake.files

        restored = syncer("restore", "data", "--to", "cloud", "--json")
        assert restored.exit_code == 0, restored.output
        assert restored.json()["counts"] == {"present": 1, "uploaded": 2}
        assert fake.files["backup/a.txt"] == b"a.txt" * 100
        assert fake.files["backup/dir/b.txt"] == b"dir/b.txt" * 100
        puts = [headers for method, _, headers in fake.requests if method == "PUT"]
        assert len(puts) == 2 and all(len(headers["Checksum"]) == 64 and headers["Checksum"].isupper()
                                      for headers in puts)

        again = syncer("restore", "data", "--to", "cloud", "--json")
        assert again.exit_code == 0 and again.json()["counts"] == {"present": 3}
        assert fake.count_requests("PUT") == 2
        assert not list((tmp_path / "state" / "restore-cloud").iterdir())  # staging removed


@pytest.mark.restic_versions
def test_restore_to_any_s3_bucket(tmp_path, s3_server):
    with bunny.FakeBunny(zone="files") as fake:
        fake.put_file("backup/x/y.bin", b"\x00\x01" * 5000)
        fake.put_file("backup/z.txt", b"z")
        syncer = site(tmp_path, {"type": "bunnycdn", "zone": "files", "path": "backup", "endpoint": fake.url},
                      f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        pulled_and_pushed(syncer)
    s3_server.client().create_bucket(Bucket="restored")
    keys = write_secret(tmp_path / "secrets" / "s3.env", s3_server.credentials_text())
    arguments = ("restore", "data", "--to", "s3://restored/from-backup", "--endpoint-url", s3_server.url,
                 "--credentials", keys, "--json")
    first = syncer(*arguments)
    assert first.exit_code == 0, first.output
    assert first.json()["counts"] == {"uploaded": 2}
    body = s3_server.client().get_object(Bucket="restored", Key="from-backup/x/y.bin")["Body"].read()
    assert body == b"\x00\x01" * 5000
    second = syncer(*arguments)
    assert second.json()["counts"] == {"present": 2}
    assert "testing-secret-key" not in first.output + second.output


def smugmug_site(tmp_path, fake):
    return site(tmp_path, {"type": "smugmug", "api_url": fake.url, "upload_url": fake.url + "/"},
                smugmug.credentials_text())


def uploaded(report):
    return sorted(item["path"] for item in report["items"] if item["status"] == "uploaded")


def test_smugmug_restore_of_videos_run_twice_uploads_only_what_is_absent_and_reports_what_was_sent(tmp_path):
    with smugmug.FakeSmugMug(content_md5="base64") as fake:
        album = fake.add_album("/Family")
        fake.add_image(album, "kept.jpg", b"a photo SmugMug still holds" * 400)
        fake.add_image(album, "clip.mov", b"a video with its original archived" * 900)
        fake.add_image(album, "phone.mov", b"a video whose original SmugMug no longer offers", archived=False,
                       reencoded=b"SmugMug's own MP4 encoding" * 700)
        lost_photo = fake.add_image(album, "lost.jpg", b"a photo deleted by mistake" * 300)
        lost_video = fake.add_image(album, "lost.mov", b"a video deleted by mistake" * 800)
        syncer = smugmug_site(tmp_path, fake)
        pulled_and_pushed(syncer)
        fake.remove_image(lost_photo)
        fake.remove_image(lost_video)

        first = syncer("restore", "data", "--to", "cloud", "--json")
        assert first.exit_code == 0, first.output
        report = first.json()
        assert report["counts"] == {"present": 2, "present_unverifiable": 1, "uploaded": 2}
        assert uploaded(report) == sorted(fake.uploaded_paths()) == ["Family/lost.jpg", "Family/lost.mov"]
        assert [upload["replaced"] for upload in fake.upload_log] == [None, None]
        [phone] = [item for item in report["items"] if item["path"] == "Family/phone.mov"]
        assert phone["status"] == "present_unverifiable"
        assert "MP4 bytes under a .mov name" in phone["reason"]  # what the local copy really is
        names = sorted(image["FileName"] for image in fake.albums[album]["images"])
        assert names == ["clip.mov", "kept.jpg", "lost.jpg", "lost.mov", "phone.mov"]

        second = syncer("restore", "data", "--to", "cloud", "--json")
        assert second.exit_code == 0, second.output
        assert second.json()["counts"] == {"present": 4, "present_unverifiable": 1}
        assert uploaded(second.json()) == [] and len(fake.upload_log) == 2  # nothing sent the second time


def test_smugmug_restore_reports_a_refused_upload_as_failed_never_uploaded(tmp_path):
    with smugmug.FakeSmugMug() as fake:
        album = fake.add_album("/Family")
        lost = fake.add_image(album, "lost.jpg", b"a photo deleted by mistake")
        syncer = smugmug_site(tmp_path, fake)
        pulled_and_pushed(syncer)
        fake.remove_image(lost)
        fake.inject(200, body={"stat": "fail", "method": "smugmug.images.upload", "code": 5,
                               "message": "system error"}, method="POST")
        refused = syncer("restore", "data", "--to", "cloud", "--json")
        assert refused.exit_code == 1, refused.output
        assert refused.json()["counts"] == {"failed": 1}
        assert "system error" in refused.json()["items"][0]["reason"] and fake.uploaded_paths() == []
        again = syncer("restore", "data", "--to", "cloud", "--json")
        assert again.json()["counts"] == {"uploaded": 1} and fake.uploaded_paths() == ["Family/lost.jpg"]


def test_smugmug_restore_replaces_an_image_that_differs_instead_of_adding_a_second(tmp_path):
    with smugmug.FakeSmugMug() as fake:
        album = fake.add_album("/Family")
        edited = fake.add_image(album, "edited.jpg", b"the photo as backed up")
        syncer = smugmug_site(tmp_path, fake)
        pulled_and_pushed(syncer)
        fake.images[edited]["data"] = b"overwritten upstream by mistake"
        first = syncer("restore", "data", "--to", "cloud", "--json")
        assert first.json()["counts"] == {"uploaded": 1}
        assert first.json()["items"][0]["reason"] == "differs at the authority"
        assert [upload["replaced"] for upload in fake.upload_log] == [edited]
        assert [image["ImageKey"] for image in fake.albums[album]["images"]] == [edited]
        assert fake.images[edited]["data"] == b"the photo as backed up"
        again = syncer("restore", "data", "--to", "cloud", "--json")
        assert again.json()["counts"] == {"present": 1} and len(fake.upload_log) == 1


def test_gitlab_restore_creates_the_lost_project_and_pushes_branches_and_tags(tmp_path):
    with gitlab.FakeGitLab(tmp_path / "gitlab-server") as fake:
        tool = fake.add_project("team", "tool")
        fake.commit(tool, {"README.md": "hello"})
        fake.commit(tool, {"f": "x"}, branch="feature")
        fake.tag(tool, "v1.0")
        fake.set_ref(tool, "refs/merge-requests/1/head", fake.refs(tool)[0]["main"])  # hidden: never pushed back
        other = fake.add_project("team", "other")
        fake.commit(other, {"a": "b"})
        syncer = site(tmp_path, {"type": "gitlab", "url": fake.url, "groups": ["team"]},
                      f"GITLAB_TOKEN={gitlab.TOKEN}\n")
        pulled_and_pushed(syncer)
        refs_before = fake.refs(tool)
        shutil.rmtree(fake.repository(tool))
        del fake.projects[tool]

        planned = syncer("restore", "data", "--to", "cloud", "--dry-run", "--json")
        assert planned.exit_code == 0, planned.output
        assert planned.json()["counts"] == {"to_create": 1, "present": 1}
        assert not any(p["path"] == "tool" for p in fake.projects.values())

        restored = syncer("restore", "data", "--to", "cloud", "--json")
        assert restored.exit_code == 0, restored.output
        assert restored.json()["counts"] == {"created": 1, "present": 1}
        new_id = next(pid for pid, p in fake.projects.items() if p["path_with_namespace"] == "team/tool")
        assert fake.refs(new_id) == refs_before
        assert gitlab.TOKEN not in restored.output

        again = syncer("restore", "data", "--to", "cloud", "--json")
        assert again.json()["counts"] == {"present": 2}
        assert syncer("verify").exit_code == 0


@pytest.mark.parametrize("target", ["s3://", "s3://bucket"])
def test_s3_target_needs_a_bucket_and_credentials(tmp_path, target):
    with bunny.FakeBunny(zone="files") as fake:
        syncer = site(tmp_path, {"type": "bunnycdn", "zone": "files", "endpoint": fake.url},
                      f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        result = syncer("restore", "data", "--to", target)
    assert result.exit_code == 2
    assert ("s3://BUCKET/PREFIX" in result.stderr) or ("--credentials" in result.stderr)
    assert "Traceback" not in result.output
