import os
import tempfile

import pytest

from tests.support import RESTIC, restic_under_test, start_s3_server


def pytest_report_header(config):
    return f"restic under test: {restic_under_test()} ({RESTIC})"


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (moto) on 127.0.0.1 for the whole session."""
    server = start_s3_server()
    yield server
    server.process.terminate()
    server.process.wait(10)


@pytest.fixture(scope="session", autouse=True)
def session_tmpdir(tmp_path_factory):
    """Temporary files of the session's subprocesses (restic's, git's) go below pytest's base
    folder, never straight into /tmp: restic's snapshot holds the folders above a dataset, and
    another worker writing into /tmp would change one above a checkout kept there (as CI's)."""
    folder = tmp_path_factory.getbasetemp() / "tmp"
    folder.mkdir(exist_ok=True)
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(folder)
    yield folder
    if saved[0] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved[0]
    tempfile.tempdir = saved[1]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Tests never see the developer's syncer settings, credentials or AWS profile."""
    for key in list(os.environ):
        if key.startswith(("SYNCER_", "AWS_", "RESTIC_")) or key == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
