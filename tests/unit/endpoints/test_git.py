"""The git runner: argv without secrets, the token only in the environment, and git's
failures mapped to EndpointError (permanent when retrying cannot help)."""

import base64
import logging
import subprocess

import pytest

from syncer.endpoints import git
from syncer.errors import EndpointError

TOKEN = "glpat-door-test-token"


def make_repository(path):
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    return path


def test_the_token_is_only_in_the_environment_scoped_to_the_url():
    environment = git.auth_environment("https://gitlab.example/", TOKEN)
    assert environment["GIT_CONFIG_KEY_0"] == "http.https://gitlab.example/.extraHeader"
    header = environment["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(header).decode() == f"oauth2:{TOKEN}"
    for argv in (git.clone_mirror_argv("https://gitlab.example/a/b.git", "/t"), git.update_mirror_argv("/t"),
                 git.push_refs_argv("/t", "https://gitlab.example/a/b.git"), git.fsck_argv("/t")):
        assert not any(TOKEN in part or header in part for part in argv)
    assert git.auth_environment("https://gitlab.example/", None) == {}


def test_stdout_is_returned_and_the_logged_command_carries_no_token(tmp_path, caplog):
    repository = make_repository(tmp_path / "r.git")
    auth = git.auth_environment("https://gitlab.example", TOKEN)
    with caplog.at_level(logging.DEBUG, logger="syncer.git"):
        output = git.run_git(["git", "-C", str(repository), "rev-parse", "--is-bare-repository"], auth)
    assert output == "true\n"
    assert f"running git -C {repository} rev-parse --is-bare-repository" in caplog.text
    assert TOKEN not in caplog.text and auth["GIT_CONFIG_VALUE_0"] not in caplog.text


def test_a_non_zero_exit_becomes_an_endpoint_error_with_gits_message(tmp_path):
    with pytest.raises(EndpointError) as caught:
        git.run_git(git.list_refs_argv(tmp_path / "missing.git"), where="team/missing.git")
    assert str(caught.value).startswith("team/missing.git: fatal: cannot change to")
    assert not caught.value.permanent


def test_a_refused_login_is_permanent(tmp_path):
    """git says so on stderr; retrying with the same token cannot help."""
    script = "echo 'remote: HTTP Basic: Access denied' >&2; echo 'fatal: Authentication failed for x' >&2; exit 128"
    with pytest.raises(EndpointError) as caught:
        git.run_git(["sh", "-c", script], where="team/tool.git")
    assert str(caught.value) == "team/tool.git: fatal: Authentication failed for x"
    assert caught.value.permanent


def test_a_missing_git_is_a_permanent_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EndpointError, match="git is not installed") as caught:
        git.run_git(git.fsck_argv(tmp_path))
    assert caught.value.permanent
