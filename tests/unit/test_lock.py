"""requirements.lock (what `make install` puts on the board) holds every dependency of
pyproject.toml at a version it allows, each with its hashes: a dependency added without
`make lock` fails here, not on the board."""

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO


def locked():
    """{canonical name: (version, number of hashes)} of requirements.lock."""
    text = (REPO / "requirements.lock").read_text()
    found = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            found[canonicalize_name(match.group(1))] = (match.group(2), block.count("--hash=sha256:"))
    return found


def test_every_dependency_is_locked_at_an_allowed_version_with_its_hashes():
    pins = locked()
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for text in dependencies:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version), f"{name}=={version} does not satisfy {requirement}"
    assert all(hashes for _, hashes in pins.values())
    assert {"setuptools", "wheel"} <= set(pins)  # make install builds syncer itself from the lock
