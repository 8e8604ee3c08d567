"""The example policies are valid, cover every authority type, and comment every key."""

import re
from pathlib import Path

import pytest

from syncer.policy.load import load_policy_file
from syncer.policy.model import AUTHORITY_TYPES

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


def test_there_is_an_example_for_every_authority_type():
    assert {path.stem for path in EXAMPLES.glob("*.yaml")} >= set(AUTHORITY_TYPES)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_example_is_valid_and_every_key_is_commented(path):
    policy, problems = load_policy_file(path, check_paths=False)
    assert policy is not None and problems == [], problems
    assert policy.authority.type == path.stem.split("-")[0]  # local.yaml, local-database.yaml, ...
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if re.match(r"^\s*[A-Za-z_]+:", line):
            assert "#" in line, f"{path.name}:{number}: key without a comment: {line.strip()}"
