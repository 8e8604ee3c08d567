"""`syncer doctor` against a whole healthy setup (SmugMug, Bunny and GitLab fakes, the
loopback S3 server behind a forwarder whose clock a test can skew, a real restic
repository, a watched local dataset), then with one fault planted at a time: each
fails exactly its own check, with the fix in words, and nothing else fails."""

import os
import subprocess

import pytest

from tests.fakes import bunny, gitlab, smugmug
from tests.fakes.forward import ForwardingServer
from tests.support import require_tool, run_syncer, write_policy, write_secret, write_tree

PASSWORD = "doctor-test-password-4242"


class World:
    """Every kind of dataset doctor looks at, healthy."""

    def __init__(self, tmp_path, s3_server):
        self.root = tmp_path
        self.policies = tmp_path / "policies"
        self.state = tmp_path / "state"
        self.smugmug = smugmug.FakeSmugMug().start()
        self.bunny = bunny.FakeBunny(zone="files").start()
        self.gitlab = gitlab.FakeGitLab(tmp_path / "gitlab-server").start()
        self.gitlab.add_group("team")
        self.s3 = ForwardingServer(s3_server.url).start()
        s3_server.client().create_bucket(Bucket="doctor-bucket")
        secrets = tmp_path / "secrets"
        self.credentials = {
            "photos": write_secret(secrets / "smugmug.env", smugmug.credentials_text()),
            "site": write_secret(secrets / "bunny.env", f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n"),
            "code": write_secret(secrets / "gitlab.env", f"GITLAB_TOKEN={gitlab.TOKEN}\n"),
            "bucket": write_secret(secrets / "s3.env", s3_server.credentials_text()),
        }
        self.password_file = write_secret(secrets / "restic.pass", PASSWORD + "\n")
        self.repository = tmp_path / "repository"
        self.restic("init")
        authorities = {
            "photos": {"type": "smugmug", "api_url": self.smugmug.url, "upload_url": self.smugmug.url + "/"},
            "site": {"type": "bunnycdn", "zone": "files", "endpoint": self.bunny.url},
            "code": {"type": "gitlab", "url": self.gitlab.url, "groups": ["team"]},
            "bucket": {"type": "s3", "bucket": "doctor-bucket", "endpoint_url": self.s3.url},
        }
        self.paths = {}
        for name, authority in authorities.items():
            self.paths[name] = write_tree(tmp_path / "data" / name, {"a/file.txt": name})
            write_policy(self.policies, name, {"path": str(self.paths[name]),
                                               "authority": {**authority, "credentials": str(self.credentials[name])}})
        self.paths["notes"] = write_tree(tmp_path / "data" / "notes", {f"d{n}/e/f.txt": "x" for n in range(3)})
        write_tree(tmp_path / "notes-authority", {"f.txt": "x"})
        write_policy(self.policies, "notes", {
            "path": str(self.paths["notes"]), "watch": True,
            "authority": {"type": "local", "path": str(tmp_path / "notes-authority")},
            "offsite": {"repository": str(self.repository), "password_file": str(self.password_file),
                        "manifest_root": str(tmp_path / "manifests")}})
        # A URL on a fake that counts its requests: doctor says it is configured, never pings it.
        (self.policies / "syncer.yaml").write_text(f"notify:\n  healthchecks: {self.smugmug.url}/ping/photos\n")

    def restic(self, *arguments):
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("RESTIC_", "AWS_"))}
        environment.update(RESTIC_REPOSITORY=str(self.repository), RESTIC_PASSWORD_FILE=str(self.password_file),
                           RESTIC_CACHE_DIR=str(self.root / "restic-cache"))
        done = subprocess.run([require_tool("restic"), *arguments], capture_output=True, text=True, env=environment,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    def doctor(self, *arguments, env=None):
        result = run_syncer("doctor", "--json", *arguments, policies=self.policies, state=self.state, env=env)
        for item in result.json()["checks"]:  # every warn and fail says its fix
            assert item["fix"] if item["status"] in ("warn", "fail") else item["fix"] is None, item
        return result

    def close(self):
        for fake in (self.smugmug, self.bunny, self.gitlab, self.s3):
            fake.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory, s3_server):
    """One setup for the module: each test plants its fault and takes it away again."""
    built = World(tmp_path_factory.mktemp("doctor"), s3_server)
    yield built
    built.close()


def by_status(result, status):
    return {(item["dataset"], item["check"]): item for item in result.json()["checks"] if item["status"] == status}


def test_a_healthy_setup_passes_and_says_what_it_reached(world):
    result = world.doctor()
    assert result.exit_code == 0, result.output
    assert by_status(result, "fail") == {}
    passed = by_status(result, "pass")
    for dataset in ("photos", "site", "code", "bucket", "notes"):
        assert (dataset, "authority") in passed and (dataset, "path") in passed and (dataset, "notify") in passed
    assert "user tester" in passed[("photos", "authority")]["detail"]
    assert "user tester" in passed[("code", "authority")]["detail"]
    assert ("bucket", "clock") in passed and ("notes", "inotify watches") in passed
    assert "opens" in by_status(result, "warn")[("notes", "offsite repository")]["detail"]  # no snapshot yet
    assert world.smugmug.count_requests(path_contains="!authuser") == 1
    assert "healthchecks configured" in passed[("photos", "notify")]["detail"]
    assert world.smugmug.count_requests(path_contains="/ping/") == 0
    for secret in (*smugmug.CREDENTIALS.values(), bunny.ACCESS_KEY, gitlab.TOKEN, PASSWORD):
        assert secret not in result.output
    text = run_syncer("doctor", policies=world.policies, state=world.state)
    assert text.exit_code == 0 and "pass  photos  authority: smugmug at" in text.stdout


# Each plants one fault; returns the check that must fail, a piece of its fix, and how to undo it.
def refuse_smugmug(world):
    world.smugmug.credentials["SMUGMUG_TOKEN"] = "another-token"
    return ("photos", "authority"), "syncer auth smugmug photos", \
        lambda: world.smugmug.credentials.update(smugmug.CREDENTIALS)


def refuse_bunny(world):
    world.bunny.access_key = "another-zone-password"
    return ("site", "authority"), "syncer auth bunnycdn site", lambda: setattr(world.bunny, "access_key",
                                                                               bunny.ACCESS_KEY)


def refuse_gitlab(world):
    world.gitlab.token = "glpat-another"
    return ("code", "authority"), "syncer auth gitlab code", lambda: setattr(world.gitlab, "token", gitlab.TOKEN)


def wrong_restic_password(world):
    world.password_file.write_text("not the password\n")
    return ("notes", "offsite repository"), "first line of", lambda: world.password_file.write_text(PASSWORD + "\n")


def missing_dataset_directory(world):
    moved = world.paths["site"].with_name("site-elsewhere")
    world.paths["site"].rename(moved)
    return ("site", "path"), f"mkdir -p {world.paths['site']}", lambda: moved.rename(world.paths["site"])


def credentials_readable_by_others(world):
    world.credentials["code"].chmod(0o644)
    return (("code", "credentials authority.credentials"), f"chmod 600 {world.credentials['code']}",
            lambda: world.credentials["code"].chmod(0o600))


def skewed_s3_clock(world):
    world.s3.clock_offset = 20 * 60
    return ("bucket", "clock"), "NTP", lambda: setattr(world.s3, "clock_offset", 0.0)


FAULTS = [refuse_smugmug, refuse_bunny, refuse_gitlab, wrong_restic_password, missing_dataset_directory,
          credentials_readable_by_others, skewed_s3_clock]


@pytest.mark.parametrize("plant", FAULTS, ids=lambda plant: plant.__name__)
def test_one_planted_fault_fails_its_own_check_with_its_fix_and_nothing_else(world, plant):
    failing, fix, undo = plant(world)
    try:
        result = world.doctor()
    finally:
        undo()
    assert result.exit_code == 1, result.output
    failed = by_status(result, "fail")
    assert set(failed) == {failing}, failed
    assert fix in failed[failing]["fix"]


def test_too_few_inotify_watches_fail_the_watched_dataset(world):
    result = world.doctor(env={"SYNCER_MAX_USER_WATCHES": "4"})
    assert result.exit_code == 1
    failed = by_status(result, "fail")
    assert set(failed) == {("notes", "inotify watches")}
    assert "fs.inotify.max_user_watches" in failed[("notes", "inotify watches")]["fix"]
    assert "7 directories" in failed[("notes", "inotify watches")]["detail"]


def test_an_invalid_policy_is_exit_2_and_the_others_are_still_checked(world):
    (world.policies / "broken.yaml").write_text("path: /nowhere\nauthority: {type: ftp}\n")
    try:
        result = world.doctor("photos")
    finally:
        (world.policies / "broken.yaml").unlink()
    assert result.exit_code == 2
    failed = by_status(result, "fail")
    assert set(failed) == {(None, "policies")} and "broken.yaml" in failed[(None, "policies")]["detail"]
    assert ("photos", "authority") in by_status(result, "pass")
    assert {item["dataset"] for item in result.json()["checks"]} == {None, "photos"}
