"""The restic version table, and the version detected through the restic door."""

import pytest

from syncer.errors import ResticError
from syncer.restic.runner import detect_version, restic_version
from syncer.restic.versions import FEATURES, has_feature, parse_version


def test_version_table_and_parsing():
    version = parse_version("restic 0.14.0 compiled with go1.19.8 on linux/amd64\n")
    assert version == (0, 14, 0)
    assert not has_feature(version, "restore_json")
    assert has_feature((0, 17, 1), "restore_json")
    assert all(isinstance(minimum, tuple) and len(minimum) == 3 for minimum in FEATURES.values())
    with pytest.raises(ResticError):
        parse_version("not restic")


def stand_in(directory, script):
    """A stand-in restic: a shell script at a path of its own (detect_version is cached per binary)."""
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / "restic"
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(0o755)
    return str(binary)


def test_the_version_is_read_through_the_restic_door(tmp_path):
    binary = stand_in(tmp_path / "new", 'echo "restic 0.17.1 compiled with go1.22 on linux/amd64"\n')
    assert detect_version(binary) == (0, 17, 1)


def test_a_missing_restic_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ResticError, match="restic binary .*/nowhere/restic .*was not found"):
        detect_version(str(tmp_path / "nowhere" / "restic"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ResticError, match="restic binary was not found on PATH"):
        restic_version("restic")


def test_output_that_is_not_restics_is_refused(tmp_path):
    binary = stand_in(tmp_path / "odd", 'echo "something else entirely"\n')
    with pytest.raises(ResticError, match="cannot tell the restic version"):
        detect_version(binary)
