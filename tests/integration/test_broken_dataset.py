"""One broken dataset never stops the others: a disk not mounted or a file not there
fails that dataset alone (exit 3 in the end-of-run summary); a broken policy file is
reported, left out, and the other files run (exit 2 at the end)."""

import yaml

from tests.integration.offsite_support import make_dataset


def two_datasets(tmp_path):
    """photos, fine; music, whose local authority is on a NAS that is not mounted."""
    photos = make_dataset(tmp_path, {"a.jpg": "a photo"}, name="photos")
    music = make_dataset(tmp_path, {"song.flac": "a song"}, name="music", policies=photos.policies)
    document = yaml.safe_load((photos.policies / "music.yaml").read_text())
    document["authority"]["path"] = str(tmp_path / "nas" / "music")
    (photos.policies / "music.yaml").write_text(yaml.safe_dump(document))
    return photos, music


def snapshot_count(dataset):
    result = dataset.syncer("snapshots", dataset.name, "--json")
    assert result.exit_code == 0, result.output
    [row] = result.json()["datasets"]
    return len(row["snapshots"])


def rows(result):
    return by_name(result.json())


def by_name(section):
    return {row["name"]: row for row in section["datasets"]}


def test_an_unmounted_nas_fails_its_dataset_alone_in_push_run_and_job_push(tmp_path):
    photos, music = two_datasets(tmp_path)
    missing_authority = f"music.yaml: authority.path: {tmp_path / 'nas' / 'music'} does not exist or is not a directory"

    pushed = photos.syncer("push", "photos")
    assert pushed.exit_code == 0, pushed.output
    assert snapshot_count(photos) == 1

    run = photos.syncer("run", "--json")
    assert run.exit_code == 3, run.output
    report = run.json()
    verified = by_name(report["verify"])
    assert verified["music"]["error"] == missing_authority and verified["music"]["exit_code"] == 3
    assert verified["photos"]["counts"]["ok"] == 1 and verified["photos"]["exit_code"] == 0
    assert {row["name"] for row in report["push"]["datasets"] if row.get("snapshot")} == {"photos", "music"}
    assert snapshot_count(photos) == 2  # a push needs the local copy, not the authority

    (music.data).rename(tmp_path / "music-disk-unplugged")  # now the local copy's disk is gone too
    job = photos.syncer("job", "push", "--json")
    assert job.exit_code == 3, job.output
    pushes = rows(job)
    assert pushes["music"]["error"] == f"music.yaml: path: dataset path {music.data} does not exist"
    assert pushes["photos"]["snapshot"] and pushes["photos"]["exit_code"] == 0
    assert snapshot_count(photos) == 3
    assert "Traceback" not in job.output


def test_a_missing_password_file_fails_that_push_and_never_verify(tmp_path):
    photos, music = two_datasets(tmp_path)
    document = yaml.safe_load((photos.policies / "music.yaml").read_text())
    document["authority"]["path"] = str(music.data)
    document["offsite"]["password_file"] = str(tmp_path / "usb-key" / "restic.pass")  # not plugged in
    (photos.policies / "music.yaml").write_text(yaml.safe_dump(document))

    verified = photos.syncer("verify", "--json")
    assert verified.exit_code == 0, verified.output  # verify needs no repository
    assert {name: row["counts"]["ok"] for name, row in rows(verified).items()} == {"music": 1, "photos": 1}

    pushed = photos.syncer("push", "--json")
    assert pushed.exit_code == 3, pushed.output
    assert rows(pushed)["music"]["error"] == (f"music.yaml: offsite.password_file: file "
                                              f"{tmp_path / 'usb-key' / 'restic.pass'} does not exist")
    assert rows(pushed)["photos"]["snapshot"]


def test_a_broken_policy_file_is_reported_and_the_others_run(tmp_path):
    photos = make_dataset(tmp_path, {"a.jpg": "a photo"}, name="photos")
    (photos.policies / "broken.yaml").write_text("path: /srv/x\nauthority: [unclosed\n")
    problem = "broken.yaml: line 3, column 1: YAML syntax error: expected ',' or ']', but got '<stream end>'"

    verified = photos.syncer("verify", "--json")
    assert verified.exit_code == 2, verified.output  # the worst of all: the broken file's
    assert rows(verified)["photos"]["counts"]["ok"] == 1
    assert problem in verified.stderr.splitlines()
    assert "syncer: left out broken.yaml (1 problem above); the other datasets ran" in verified.stderr.splitlines()
    assert verified.json()["left_out"] == ["broken.yaml"]  # the document says why too
    assert verified.json()["policy_problems"] == [problem]

    one = photos.syncer("verify", "photos")  # a command that names its dataset is not failed by another file
    assert one.exit_code == 0 and problem in one.stderr, one.output

    named = photos.syncer("verify", "broken")  # it may be in the file that did not load: say why
    assert named.exit_code == 2 and problem in named.stderr and "unknown dataset" not in named.stderr

    checked = photos.syncer("check-policies")
    assert checked.exit_code == 2 and problem in checked.stderr
