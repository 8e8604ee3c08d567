"""`syncer auth`: SmugMug's OAuth 1.0a out-of-band flow end to end against the fake
(which checks every signature with oauthlib's server side), and the token commands
against the GitLab, Bunny and S3 servers. Credentials are kept only once accepted."""

import stat

import pytest

from tests.fakes import bunny, gitlab, smugmug
from tests.support import run_syncer, write_policy, write_secret

API_KEYS = {key: smugmug.CREDENTIALS[key] for key in ("SMUGMUG_API_KEY", "SMUGMUG_API_SECRET")}
OTHER_LINES = "# written by hand, kept by syncer\nOTHER_SETTING=keep me\n"


@pytest.fixture
def fake():
    server = smugmug.FakeSmugMug().start()
    yield server
    server.stop()


def smugmug_setup(tmp_path, fake, keys=API_KEYS):
    credentials = write_secret(tmp_path / "credentials" / "smugmug.env", OTHER_LINES + smugmug.credentials_text(keys))
    write_policy(tmp_path / "policies", "photos", {
        "path": str(tmp_path / "photos"),
        "authority": {"type": "smugmug", "api_url": fake.url, "credentials": str(credentials)}})
    return credentials


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_smugmug_authorization_stores_the_four_keys_and_keeps_the_other_lines(tmp_path, fake):
    credentials = smugmug_setup(tmp_path, fake)
    result = run_syncer("auth", "smugmug", "photos", "--permissions", "modify", "--verifier", fake.verifier,
                        policies=tmp_path / "policies")
    assert result.exit_code == 0, result.output
    assert "Access=Full" in result.stderr and "Permissions=Modify" in result.stderr
    assert f"{fake.url}/services/oauth/1.0a/authorize" in result.stderr
    assert "user tester" in result.stdout
    text = credentials.read_text()
    assert text.startswith(OTHER_LINES)
    assert f"SMUGMUG_TOKEN={fake.credentials['SMUGMUG_TOKEN']}\n" in text
    assert f"SMUGMUG_TOKEN_SECRET={fake.credentials['SMUGMUG_TOKEN_SECRET']}\n" in text
    assert fake.credentials["SMUGMUG_TOKEN"] != smugmug.CREDENTIALS["SMUGMUG_TOKEN"]  # a new one, from the flow
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for secret in (fake.credentials["SMUGMUG_TOKEN_SECRET"], API_KEYS["SMUGMUG_API_SECRET"]):
        assert secret not in result.output
    assert leftovers(credentials.parent) == []


def test_a_wrong_verifier_is_one_message_exit_3_and_the_file_untouched(tmp_path, fake):
    credentials = smugmug_setup(tmp_path, fake)
    before = credentials.read_bytes()
    # --credentials alone: the api_url comes from the policy naming that file.
    result = run_syncer("auth", "smugmug", "--credentials", credentials, "--verifier", "000000",
                        policies=tmp_path / "policies")
    assert result.exit_code == 3, result.output
    assert "SmugMug refused the verifier" in result.stderr and "Traceback" not in result.output
    assert fake.count_requests(path_contains="getAccessToken") == 1
    assert credentials.read_bytes() == before and leftovers(credentials.parent) == []


def test_a_refused_api_key_is_one_message_exit_3(tmp_path, fake):
    credentials = smugmug_setup(tmp_path, fake, dict(API_KEYS, SMUGMUG_API_SECRET="not-the-secret"))
    before = credentials.read_bytes()
    result = run_syncer("auth", "smugmug", "photos", "--verifier", fake.verifier, policies=tmp_path / "policies")
    assert result.exit_code == 3, result.output
    assert "SmugMug refused the API key or secret" in result.stderr
    assert "not-the-secret" not in result.output
    assert credentials.read_bytes() == before
    assert fake.count_requests(path_contains="getAccessToken") == 0


def test_no_terminal_and_no_verifier_is_exit_2_before_any_request(tmp_path, fake):
    smugmug_setup(tmp_path, fake)
    result = run_syncer("auth", "smugmug", "photos", policies=tmp_path / "policies")
    assert result.exit_code == 2 and "--verifier" in result.stderr
    assert fake.count_requests() == 0


@pytest.mark.parametrize("service", ["gitlab", "bunnycdn"])
def test_a_token_is_stored_only_once_the_service_accepted_it(tmp_path, service):
    if service == "gitlab":
        server, good, key = gitlab.FakeGitLab(tmp_path / "gitlab").start(), gitlab.TOKEN, "GITLAB_TOKEN"
        server.add_group("team")
        authority = {"type": "gitlab", "url": server.url, "groups": ["team"]}
    else:
        server, good, key = bunny.FakeBunny(zone="files").start(), bunny.ACCESS_KEY, "BUNNY_ACCESS_KEY"
        authority = {"type": "bunnycdn", "zone": "files", "endpoint": server.url}
    try:
        credentials = write_secret(tmp_path / "credentials" / f"{service}.env", OTHER_LINES + f"{key}=old-one\n")
        write_policy(tmp_path / "policies", "data", {"path": str(tmp_path / "data"),
                                                     "authority": {**authority, "credentials": str(credentials)}})
        refused = run_syncer("auth", service, "data", policies=tmp_path / "policies", input="not-the-token\n")
        assert refused.exit_code == 3, refused.output
        assert "refused" in refused.stderr and str(credentials) in refused.stderr
        assert ".syncer-tmp-" not in refused.output and "not-the-token" not in refused.output
        assert credentials.read_text() == OTHER_LINES + f"{key}=old-one\n"
        accepted = run_syncer("auth", service, "data", policies=tmp_path / "policies", input=good + "\n")
        assert accepted.exit_code == 0, accepted.output
        assert credentials.read_text() == OTHER_LINES + f"{key}={good}\n"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600 and good not in accepted.output
        assert leftovers(credentials.parent) == []
    finally:
        server.stop()


def test_s3_keys_are_read_one_line_each_and_checked_with_head_bucket(tmp_path, s3_server):
    s3_server.client().create_bucket(Bucket="auth-bucket")
    credentials = tmp_path / "credentials" / "s3.env"  # not there yet: auth creates it
    write_policy(tmp_path / "policies", "bucket", {
        "path": str(tmp_path / "data"),
        "authority": {"type": "s3", "bucket": "auth-bucket", "endpoint_url": s3_server.url,
                      "credentials": str(credentials)}})
    result = run_syncer("auth", "s3", "bucket", policies=tmp_path / "policies",
                        input=f"{s3_server.access_key}\n{s3_server.secret_key}\n")
    assert result.exit_code == 0, result.output
    assert "bucket auth-bucket reachable" in result.stdout
    assert credentials.read_text() == s3_server.credentials_text()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    missing = run_syncer("auth", "s3", "bucket", policies=tmp_path / "policies", input="only-one-line\n")
    assert missing.exit_code == 2 and "AWS_SECRET_ACCESS_KEY" in missing.stderr


def test_a_token_typed_on_a_terminal_is_not_echoed(tmp_path):
    """On a terminal the token is asked without echo: what the terminal shows has the
    prompt and not the token."""
    import os
    import pty
    import select
    import sys
    import time

    server = gitlab.FakeGitLab(tmp_path / "gitlab").start()
    server.add_group("team")
    try:
        credentials = tmp_path / "credentials" / "gitlab.env"
        write_policy(tmp_path / "policies", "code", {"path": str(tmp_path / "data"), "authority": {
            "type": "gitlab", "url": server.url, "groups": ["team"], "credentials": str(credentials)}})
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SYNCER_")}
        child, terminal = pty.fork()
        if child == 0:  # the child, with the terminal as its controlling one
            os.execve(sys.executable, [sys.executable, "-m", "syncer", "--policies", str(tmp_path / "policies"),
                                       "auth", "gitlab", "code"], environment)
        shown, typed, deadline = b"", False, time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(terminal, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not typed and b"GITLAB_TOKEN:" in shown:
                os.write(terminal, gitlab.TOKEN.encode() + b"\n")
                typed = True
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0, shown
        assert typed and gitlab.TOKEN.encode() not in shown and b"accepted the credentials" in shown
        assert credentials.read_text() == f"GITLAB_TOKEN={gitlab.TOKEN}\n"
    finally:
        server.stop()
