"""Hostile policies, fuzzed with hypothesis: whatever the file holds (broken YAML,
YAML tags and aliases, random structures, near-valid policies with one field
mangled), the loader ends in a valid Policy or in PolicyError whose every problem
reads "FILE: ...", never another exception; and the CLI exits 0 or 2 with those
messages, never a traceback."""

import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncer.errors import PolicyError
from syncer.policy.load import load_policies
from syncer.policy.model import Policy
from tests.faults.support import record
from tests.support import run_syncer, write_secret

QUICK_EXAMPLES, FULL_EXAMPLES = 200, 2000

KEYS = ["name", "path", "exclude", "authority", "offsite", "schedule", "watch", "watch_debounce", "notify", "hooks",
        "pull", "type", "bucket", "prefix", "endpoint_url", "credentials", "repository", "password_file",
        "retention", "keep_daily", "prune", "verify", "push", "before_verify", "timeout", "albums", "groups",
        "zone", "url", "nickname", "delete", "concurrency", "scrub", "repair", "fraction"]
TOKENS = ["name", "path", "authority", "type", "local", "s3", "offsite", ":", ": ", "- ", "\n", "\n  ", "\n    ",
          "{", "}", "[", "]", ",", "'", '"', "&a ", "*a", "!!python/object:os.system", "!!binary", "!!set", "? ",
          "|", ">", "#", "\t", "%YAML 1.1\n", "---\n", "...\n", "~", "null", "yes", "0x1F", "1e999", "-.inf",
          "../../etc", "/", "\\0", "\\x00", "ü", "\u202e", "\ufeff", " ", "9" * 30, "<<: *a", "=", "@", "`"]

# Strings that have broken path handling elsewhere: NUL, control characters,
# escapes out of the policy directory, over-long names, look-alike Unicode.
hostile_strings = st.one_of(
    st.sampled_from(["a\x00b", "\x00", "data\x00/../x", "../../../etc/passwd", "/", "~", "~root/x", "x" * 300,
                     "a/" * 200, "\n", "e\u0301", "\u00e9", "\u202e", "\ufeff", "*", "[", "**/..", "-1", "5%",
                     "0 * * * *", "s3:", "rest:http://127.0.0.1:1/", "C:\\x", "local", "s3", "weekly"]),
    st.text(alphabet=st.sampled_from("a/.\x00\n\t é~*?["), max_size=12),
)
scalars = st.one_of(
    hostile_strings, hostile_strings, st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(KEYS), scalars), children, max_size=5)),
    max_leaves=25,
)


def base_policy(root):
    return {"name": "fuzzed", "path": str(root), "exclude": ["*.tmp"],
            "authority": {"type": "local", "path": str(root)},
            "offsite": {"repository": str(root / "repo"), "password_file": "restic.pass",
                        "retention": {"keep_daily": 7}},
            "schedule": {"verify": "0 * * * *", "push": "30 3 * * *"}}


def positions(document):
    """Every (container, key) of a nested policy document."""
    found = []
    for key, value in document.items():
        found.append((document, key))
        if isinstance(value, dict):
            found += positions(value)
    return found


@st.composite
def mangled_policies(draw):
    """A valid policy with a few existing values replaced or deleted, or keys added,
    anywhere in it."""
    document = base_policy(Path("/tmp"))
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(positions(document)))
        action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if action == "delete":
            container.pop(key, None)
        elif action == "add":
            container[draw(st.sampled_from(KEYS))] = draw(structures)
        else:
            container[key] = draw(structures)
    return document


def load(text_or_bytes, check_paths):
    """Write one policy file into a fresh directory and load it. Return the result
    (a list of policies) or the PolicyError; any other exception escapes."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_secret(root / "restic.pass", "pw\n")
        (root / "data").mkdir()
        target = root / "fuzzed.yaml"
        if isinstance(text_or_bytes, bytes):
            target.write_bytes(text_or_bytes)
        else:
            target.write_text(text_or_bytes, encoding="utf-8", errors="surrogatepass")
        try:
            policies = load_policies(root, check_paths=check_paths)
        except PolicyError as error:
            assert error.problems, "a PolicyError without a problem"
            for problem in error.problems:
                assert problem.startswith("fuzzed.yaml: "), problem
            return error
        assert all(isinstance(policy, Policy) for policy in policies)
        assert [policy.source.name for policy in policies] == ["fuzzed.yaml"]
        return policies


def dump(document):
    try:
        return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError, UnicodeEncodeError):
        return yaml.safe_dump(document, allow_unicode=False, sort_keys=False)


def fuzz(examples):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


COUNTS = {"documents": 0}


def policy_fuzz_tests(examples):
    @fuzz(examples)
    @given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=40).map("".join), st.booleans())
    def yaml_ish_text(text, check_paths):
        COUNTS["documents"] += 1
        load(text, check_paths)

    @fuzz(examples)
    @given(st.binary(max_size=200))
    def raw_bytes(data):
        COUNTS["documents"] += 1
        load(data, True)

    @fuzz(examples)
    @given(structures, st.booleans())
    def random_structures(document, check_paths):
        COUNTS["documents"] += 1
        load(dump(document), check_paths)

    @fuzz(examples)
    @given(mangled_policies(), st.booleans())
    def near_valid_policies(document, check_paths):
        COUNTS["documents"] += 1
        load(dump(document), check_paths)

    return yaml_ish_text, raw_bytes, random_structures, near_valid_policies


@pytest.mark.parametrize("kind", range(4), ids=["yaml-ish-text", "raw-bytes", "random-structures", "near-valid"])
def test_policy_loader_fuzzed_quick(kind):
    before = COUNTS["documents"]
    policy_fuzz_tests(QUICK_EXAMPLES)[kind]()
    record("hostile input: fuzzed policy files", COUNTS["documents"] - before)


@pytest.mark.faults
@pytest.mark.parametrize("kind", range(4), ids=["yaml-ish-text", "raw-bytes", "random-structures", "near-valid"])
def test_policy_loader_fuzzed_many(kind):
    before = COUNTS["documents"]
    policy_fuzz_tests(FULL_EXAMPLES)[kind]()
    record("hostile input: fuzzed policy files", COUNTS["documents"] - before)


CLI_CASES = [
    "path: [unclosed\n",
    "authority: !!python/object:os.system {}\npath: .\n",
    "a: &a [*a]\n",
    "path: \"data\\0evil\"\nauthority: {type: local, path: data}\n",
    "path: data\nauthority: {type: local, path: data}\nexclude: [1, null, '']\n",
    "\ufeffpath: data\nauthority: {type: s3}\n",
    "- just\n- a list\n",
    "path: data\nauthority: {type: local, path: data}\nschedule: {verify: 'every day'}\n",
]


@pytest.mark.parametrize("text", CLI_CASES)
def test_check_policies_cli_on_hostile_files(tmp_path, text):
    (tmp_path / "data").mkdir()
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "data").symlink_to(tmp_path / "data")
    (policies / "hostile.yaml").write_text(text, encoding="utf-8")
    result = run_syncer("check-policies", policies=policies, state=tmp_path / "state")
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    if result.exit_code == 2:
        problems = [line for line in result.stderr.splitlines() if not line.startswith("syncer: ")]
        assert problems and all(line.startswith("hostile.yaml: ") for line in problems), result.stderr
    record("hostile input: policy files through the CLI", 1)
    assert os.listdir(tmp_path / "data") == []
