import os

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


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Tests never see the developer's syncer settings, credentials or AWS profile."""
    for key in list(os.environ):
        if key.startswith(("SYNCER_", "AWS_", "RESTIC_")) or key == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
