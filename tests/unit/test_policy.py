"""Policy loading and validation: every listed bad input, all reported at once."""

import pytest

from syncer.errors import PolicyError, UsageError
from syncer.policy import load_policies, select_policies
from syncer.policy.credentials import read_credentials, resolve_credentials_path
from tests.support import run_syncer, write_policy, write_secret


def good(tmp_path, **overrides):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "auth").mkdir(exist_ok=True)
    document = {"path": str(tmp_path / "data"), "authority": {"type": "local", "path": str(tmp_path / "auth")}}
    document.update(overrides)
    return document


def problems_of(directory):
    with pytest.raises(PolicyError) as caught:
        load_policies(directory)
    return caught.value.problems


def test_a_valid_policy_loads_with_the_stem_as_name(tmp_path):
    write_policy(tmp_path / "p", "photos", good(tmp_path, exclude=["*.tmp"]))
    [policy] = load_policies(tmp_path / "p")
    assert policy.name == "photos"
    assert policy.exclude == ("*.tmp",)
    assert policy.authority.type == "local"


def test_relative_paths_are_taken_from_the_policy_folder(tmp_path):
    (tmp_path / "p" / "data").mkdir(parents=True)
    (tmp_path / "auth").mkdir()
    write_policy(tmp_path / "p", "x", {"path": "data", "authority": {"type": "local", "path": "../auth"}})
    [policy] = load_policies(tmp_path / "p")
    assert policy.path == (tmp_path / "p" / "data").resolve()
    assert policy.authority.path == (tmp_path / "auth").resolve()


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "broken.yaml").write_text("path: /x\nauthority: [unclosed\n")
    [problem] = problems_of(tmp_path / "p")
    assert problem.startswith("broken.yaml: line ")
    assert "column" in problem and "YAML syntax error" in problem


def test_every_problem_of_every_file_is_reported_at_once(tmp_path):
    document = good(tmp_path, exclud=["*.tmp"])  # misspelt key
    document["authority"]["pth"] = "/x"
    write_policy(tmp_path / "p", "one", document)
    write_policy(tmp_path / "p", "two", {"path": 5, "authority": {"type": "local", "path": str(tmp_path)}})
    write_policy(tmp_path / "p", "three", {"authority": {"type": "dropbox"}})
    problems = problems_of(tmp_path / "p")
    assert "one.yaml: exclud: unknown key (did you mean 'exclude'?)" in problems
    assert "one.yaml: authority.pth: unknown key (did you mean 'path'?)" in problems
    assert "two.yaml: path: must be a string, not a number" in problems
    assert "three.yaml: path: field required" in problems
    assert any(p.startswith("three.yaml: authority.type: unknown authority type 'dropbox'") for p in problems)


def test_missing_required_authority_fields(tmp_path):
    write_policy(tmp_path / "p", "site", good(tmp_path, authority={"type": "bunnycdn"}))
    problems = problems_of(tmp_path / "p")
    assert "site.yaml: authority.zone: field required" in problems
    assert any(p.startswith("site.yaml: authority.credentials: field required for type bunnycdn") for p in problems)


def test_dataset_path_missing_or_not_a_directory(tmp_path):
    write_policy(tmp_path / "p", "gone", good(tmp_path, path=str(tmp_path / "nowhere")))
    (tmp_path / "file").write_text("x")
    write_policy(tmp_path / "p", "file", good(tmp_path, path=str(tmp_path / "file")))
    problems = problems_of(tmp_path / "p")
    assert f"gone.yaml: path: dataset path {tmp_path / 'nowhere'} does not exist" in problems
    assert f"file.yaml: path: dataset path {tmp_path / 'file'} is not a directory" in problems


def test_two_policies_with_one_name(tmp_path):
    write_policy(tmp_path / "p", "a", good(tmp_path, name="photos"))
    write_policy(tmp_path / "p", "b", good(tmp_path, name="photos"))
    assert problems_of(tmp_path / "p") == ["b.yaml: name: dataset name 'photos' is already used by a.yaml"]


def test_credentials_file_missing_or_too_open(tmp_path):
    secret = write_secret(tmp_path / "open.env", "AWS_ACCESS_KEY_ID=k\nAWS_SECRET_ACCESS_KEY=s\n")
    secret.chmod(0o644)
    s3 = {"type": "s3", "bucket": "b", "credentials": str(secret)}
    write_policy(tmp_path / "p", "open", good(tmp_path, authority=s3))
    write_policy(tmp_path / "p", "none", good(tmp_path, authority=dict(s3, credentials=str(tmp_path / "no.env"))))
    problems = problems_of(tmp_path / "p")
    assert any(p.startswith(f"open.yaml: authority.credentials: credentials file {secret} is readable by group")
               for p in problems)
    assert f"none.yaml: authority.credentials: credentials file {tmp_path / 'no.env'} does not exist" in problems


def test_restic_binary_missing_is_reported(tmp_path, monkeypatch):
    password = write_secret(tmp_path / "restic.pass", "pw")
    write_policy(tmp_path / "p", "x", good(tmp_path, offsite={"repository": str(tmp_path / "repo"),
                                                             "password_file": str(password)}))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert problems_of(tmp_path / "p") == [
        "x.yaml: offsite: the restic binary was not found on PATH (apt-get install -y restic)"]


def test_the_restic_binary_comes_from_syncer_yaml_or_syncer_restic(tmp_path, monkeypatch):
    from syncer.policy.load import read_policies
    from syncer.restic.repository import build_context

    password = write_secret(tmp_path / "restic.pass", "pw")
    write_policy(tmp_path / "p", "x", good(tmp_path, offsite={"repository": str(tmp_path / "repo"),
                                                             "password_file": str(password)}))
    [policy] = load_policies(tmp_path / "p")
    assert policy.restic_binary == "restic"
    binary = write_secret(tmp_path / "bin" / "restic-0.18", "#!/bin/sh\n")
    binary.chmod(0o755)
    (tmp_path / "p" / "syncer.yaml").write_text(f"restic: {binary}\n")
    [policy] = load_policies(tmp_path / "p")
    assert policy.restic_binary == str(binary)
    assert build_context(policy, tmp_path / "state").binary == str(binary)
    monkeypatch.setenv("SYNCER_RESTIC", str(tmp_path / "bin" / "missing"))
    policies, problems = read_policies(tmp_path / "p", check_paths=True)
    assert policies == [] and problems == [
        f"x.yaml: offsite: the restic binary {tmp_path}/bin/missing (syncer.yaml restic: or SYNCER_RESTIC) was "
        "not found or is not executable"]


def test_bad_cron_and_retention(tmp_path):
    password = write_secret(tmp_path / "restic.pass", "pw")
    document = good(tmp_path, schedule={"verify": "61 * * * *", "push": "daily"},
                    offsite={"repository": "/r", "password_file": str(password),
                             "retention": {"keep_daily": "seven", "keep_weakly": 4}, "prune": "sometimes"})
    write_policy(tmp_path / "p", "x", document)
    problems = problems_of(tmp_path / "p")
    assert any(p.startswith("x.yaml: schedule.verify: '61 * * * *' is not a valid cron expression") for p in problems)
    assert any(p.startswith("x.yaml: schedule.push: 'daily' is not a cron expression") for p in problems)
    assert "x.yaml: offsite.retention.keep_daily: must be a whole number, not a string" in problems
    assert "x.yaml: offsite.retention.keep_weakly: unknown key (did you mean 'keep_weekly'?)" in problems
    assert any(p.startswith("x.yaml: offsite.prune: must be one of") for p in problems)


def test_credentials_directory_is_used_for_relative_names(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert resolve_credentials_path("photos.env", tmp_path / "p") == tmp_path / "creds" / "photos.env"
    assert resolve_credentials_path("/abs/x.env", tmp_path / "p").as_posix() == "/abs/x.env"


def test_credentials_are_read_and_missing_keys_named_without_values(tmp_path):
    path = write_secret(tmp_path / "c.env", "# comment\nexport BUNNY_ACCESS_KEY='s3cr3t-value'\n")
    assert read_credentials(path, ("BUNNY_ACCESS_KEY",)) == {"BUNNY_ACCESS_KEY": "s3cr3t-value"}
    with pytest.raises(Exception) as caught:
        read_credentials(path, ("GITLAB_TOKEN",))
    assert "lacks GITLAB_TOKEN" in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_select_unknown_dataset_suggests(tmp_path):
    write_policy(tmp_path / "p", "photos", good(tmp_path))
    policies = load_policies(tmp_path / "p")
    with pytest.raises(UsageError, match="did you mean 'photos'"):
        select_policies(policies, ["photo"])


def test_check_policies_cli_exits_2_with_every_problem_and_no_traceback(tmp_path):
    write_policy(tmp_path / "p", "one", {"path": 1})
    (tmp_path / "p" / "two.yaml").write_text("a: [\n")
    result = run_syncer("check-policies", policies=tmp_path / "p", state=tmp_path / "s")
    assert result.exit_code == 2
    assert "one.yaml: path: must be a string" in result.stderr
    assert "one.yaml: authority: field required" in result.stderr
    assert "two.yaml: line 2" in result.stderr
    assert "Traceback" not in result.output


def test_check_policies_json_and_ok(tmp_path):
    write_policy(tmp_path / "p", "photos", good(tmp_path))
    result = run_syncer("check-policies", "--json", policies=tmp_path / "p", state=tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert result.json() == {"valid": True, "datasets": ["photos"]}


def test_policies_env_variable_and_missing_directory(tmp_path):
    result = run_syncer("check-policies", env={"SYNCER_POLICIES": str(tmp_path / "absent")})
    assert result.exit_code == 2
    assert f"policies directory {tmp_path / 'absent'} does not exist" in result.stderr
    assert "--policies DIR or SYNCER_POLICIES" in result.stderr


def test_every_key_is_a_typed_attribute(tmp_path):
    (tmp_path / "p" / "data").mkdir(parents=True)
    write_secret(tmp_path / "p" / "s3.env", "AWS_ACCESS_KEY_ID=k\nAWS_SECRET_ACCESS_KEY=s\n")
    write_secret(tmp_path / "p" / "restic.pass", "pw")
    write_policy(tmp_path / "p", "archive", {
        "path": "data", "authority": {"type": "s3", "bucket": "b", "credentials": "s3.env"},
        "offsite": {"repository": "repo", "password_file": "restic.pass", "retention": {"keep_daily": 7}},
        "pull": {"concurrency": 2}, "scrub": {"fraction": 0.05, "rate_mib_s": 50}, "repair": "auto",
        "hooks": {"before_push": ["true"], "timeout": "10m"}, "schedule": {"verify": "0 * * * *"},
        "watch": True, "watch_debounce": "30s", "notify": {"events": "all"}})
    [policy] = load_policies(tmp_path / "p")
    assert (policy.authority.bucket, policy.authority.prefix, policy.authority.region) == ("b", "", None)
    assert policy.authority.credentials == tmp_path / "p" / "s3.env"
    assert policy.offsite.repository == str(tmp_path / "p" / "repo")
    assert policy.offsite.retention == {"keep_daily": 7} and policy.offsite.prune == "weekly"
    assert (policy.pull.concurrency, policy.pull.delete) == (2, False)
    assert (policy.scrub.fraction, policy.scrub.rate_mib_s, policy.repair) == ("5%", 50, "auto")
    assert policy.hooks.before_push == ["true"] and policy.hooks.after_push == [] and policy.hooks.timeout == 600
    assert policy.schedule == {"verify": "0 * * * *"}
    assert (policy.watch, policy.watch_debounce, policy.notify.events) == (True, 30, "all")
    assert policy.credential_names == ("s3.env", "restic.pass")  # what systemd must LoadCredential=


def test_defaults_of_an_empty_section(tmp_path):
    write_policy(tmp_path / "p", "photos", good(tmp_path))
    [policy] = load_policies(tmp_path / "p")
    assert policy.pull is None and policy.offsite is None and policy.schedule == {}
    assert (policy.scrub.fraction, policy.repair, policy.watch, policy.watch_debounce) == (None, "manual", False, 600)
    assert policy.hooks.timeout == 30 * 60 and not policy.notify.configured


def deeply_nested():
    return "a: " + "[" * 5000 + "]" * 5000 + "\n"


def billion_laughs():
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def hundred_megabytes(path):
    with open(path, "wb") as stream:  # sparse: the size is what counts
        stream.write(b"path: /x\n# ")
        stream.truncate(100 * 2**20)


@pytest.mark.parametrize("file_name", ["x.yaml", "syncer.yaml"])
@pytest.mark.parametrize("content, expected", [
    (deeply_nested(), "line 1, column 67: nesting deeper than 64 levels is refused"),
    (billion_laughs(), "values (aliases expanded) is refused"),
    ("a: &a [*a]\n", "an alias inside the collection it refers to is refused"),
    (hundred_megabytes, "larger than 1 MiB, the most a policy file may hold: refused unparsed"),
    (bytes(range(256)) * 40, "cannot be read: not UTF-8 text"),
    ("path: \x00\x01\x02\n", "YAML syntax error: unacceptable character #x0000"),
], ids=["nested-5000-deep", "billion-laughs", "recursive-alias", "100-MB", "binary-junk", "control-characters"])
def test_hostile_yaml_is_exit_2_naming_the_file(tmp_path, file_name, content, expected):
    policies = tmp_path / "p"
    write_policy(policies, "docs", good(tmp_path))
    target = policies / file_name
    if callable(content):
        content(target)
    else:
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = run_syncer("check-policies", policies=policies, state=tmp_path / "s")
    assert result.exit_code == 2, result.output
    [problem] = [line for line in result.stderr.splitlines() if not line.startswith("syncer: ")]
    assert problem.startswith(f"{file_name}: ") and expected in problem, problem
    assert "internal error" not in result.output and "Traceback" not in result.output


def test_schema_validates_the_examples_and_refuses_a_misspelt_key(tmp_path):
    import json
    from pathlib import Path

    import jsonschema
    import yaml

    result = run_syncer("check-policies", "--schema", policies=tmp_path / "absent")
    assert result.exit_code == 0, result.stderr
    validator = jsonschema.Draft202012Validator(json.loads(result.stdout))
    examples = sorted((Path(__file__).resolve().parents[2] / "policies" / "examples").glob("*.yaml"))
    assert examples
    for example in examples:
        assert list(validator.iter_errors(yaml.safe_load(example.read_text()))) == [], example.name
    document = yaml.safe_load(examples[0].read_text())
    document["exclud"] = []
    assert [error.message for error in validator.iter_errors(document)] == [
        "Additional properties are not allowed ('exclud' was unexpected)"]


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".hidden", "x\x00y"])
def test_a_dataset_name_that_could_leave_its_folders_is_refused(tmp_path, name):
    # the manifests, the lock, the trash and the quarantine are folders named after it
    write_policy(tmp_path / "p", "photos", good(tmp_path, name=name))
    [problem] = problems_of(tmp_path / "p")
    assert problem.startswith("photos.yaml: name: ")
    assert "NUL" in problem if "\x00" in name else "must not contain '/' or '..' nor start with '.'" in problem


def test_the_whole_system_is_no_dataset(tmp_path):
    for path in ("/", "//", "/srv/.."):
        write_policy(tmp_path / "p", "root", good(tmp_path, path=path))
        assert problems_of(tmp_path / "p") == [
            "root.yaml: path: / cannot be a dataset: it holds the system and syncer's own state; name the folder to "
            "keep"]


def test_overlapping_datasets_are_both_left_out_and_named(tmp_path):
    from syncer.policy import read_policies

    (tmp_path / "data" / "music").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    write_policy(tmp_path / "p", "all", good(tmp_path))
    write_policy(tmp_path / "p", "music", good(tmp_path, path=str(tmp_path / "data" / "music")))
    write_policy(tmp_path / "p", "other", good(tmp_path, path=str(tmp_path / "other")))
    policies, problems = read_policies(tmp_path / "p")
    assert [policy.name for policy in policies] == ["other"]
    assert problems == [f"music.yaml: path: dataset path {tmp_path / 'data' / 'music'} is inside dataset all's path "
                        f"{tmp_path / 'data'} (all.yaml); datasets must not overlap: neither runs until they are apart"]


def test_a_dataset_inside_the_state_directory_is_refused(tmp_path):
    from syncer.policy import read_policies

    (tmp_path / "state" / "mine").mkdir(parents=True)
    write_policy(tmp_path / "p", "mine", good(tmp_path, path=str(tmp_path / "state" / "mine")))
    policies, problems = read_policies(tmp_path / "p", state_dir=tmp_path / "state")
    assert policies == []
    assert problems == [f"mine.yaml: path: dataset path {tmp_path / 'state' / 'mine'} is inside the state directory "
                        f"{tmp_path / 'state'}; keep datasets and syncer's state apart (--state-dir or "
                        f"SYNCER_STATE_DIR chooses the state directory)"]


def test_a_state_directory_inside_a_dataset_is_excluded_from_it_and_said(tmp_path, caplog):
    from syncer.policy import read_policies

    home = tmp_path / "home"
    (home / ".local" / "state").mkdir(parents=True)
    write_policy(tmp_path / "p", "home", good(tmp_path, path=str(home), exclude=["*.tmp"]))
    with caplog.at_level("INFO", logger="syncer.policy"):
        [policy], problems = read_policies(tmp_path / "p", state_dir=home / ".local" / "state" / "syncer")
    assert problems == []
    assert policy.exclude == ("*.tmp", "/.local/state/syncer")
    assert policy.source == tmp_path / "p" / "home.yaml"  # still the same policy
    assert (f"home: the state directory {home / '.local/state/syncer'} is inside the dataset, so it is excluded "
            f"from it (as exclude: /.local/state/syncer)") in caplog.text


def test_an_overlap_and_the_state_directory_are_both_reported(tmp_path):
    from syncer.policy import read_policies

    (tmp_path / "data" / "music").mkdir(parents=True)
    write_policy(tmp_path / "p", "all", good(tmp_path))
    write_policy(tmp_path / "p", "music", good(tmp_path, path=str(tmp_path / "data" / "music")))
    policies, problems = read_policies(tmp_path / "p", state_dir=tmp_path)
    assert policies == []
    assert [problem.split(" is inside ")[0] for problem in problems] == [
        f"music.yaml: path: dataset path {tmp_path / 'data' / 'music'}", f"all.yaml: path: dataset path "
        f"{tmp_path / 'data'}", f"music.yaml: path: dataset path {tmp_path / 'data' / 'music'}"]


def test_credentials_are_merged_keeping_every_other_line_and_staged_atomically(tmp_path):
    from syncer.errors import CredentialError
    from syncer.policy.credentials import merge_credentials, staged_credentials

    text = "# mine\nexport GITLAB_TOKEN=old\nOTHER=1\n"
    merged = merge_credentials(text, {"GITLAB_TOKEN": "new", "MORE": "2"})
    assert merged == "# mine\nGITLAB_TOKEN=new\nOTHER=1\nMORE=2\n"
    path = tmp_path / "credentials" / "gitlab.env"
    with pytest.raises(RuntimeError):
        with staged_credentials(path, {"GITLAB_TOKEN": "refused"}) as staged:
            assert staged.parent == path.parent and (staged.stat().st_mode & 0o777) == 0o600
            raise RuntimeError("the service refused it")
    assert not path.exists() and list(path.parent.iterdir()) == []
    with staged_credentials(path, {"GITLAB_TOKEN": "accepted"}):
        pass
    assert path.read_text() == "GITLAB_TOKEN=accepted\n" and (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(CredentialError):
        with staged_credentials(path, {"GITLAB_TOKEN": "two\nlines"}):
            pass
    assert path.read_text() == "GITLAB_TOKEN=accepted\n"


def test_a_dnsimple_authority_takes_an_account_zone_globs_and_its_token_key(tmp_path):
    (tmp_path / "p" / "dns").mkdir(parents=True)
    (tmp_path / "p" / "dns2").mkdir()
    write_secret(tmp_path / "p" / "dnsimple.env", "DNSIMPLE_TOKEN=t\n")
    write_policy(tmp_path / "p", "dns", {"path": "dns", "authority": {
        "type": "dnsimple", "credentials": "dnsimple.env", "account": 1010, "zones": ["example.com", "*.org"],
        "api_url": "http://127.0.0.1:9"}})
    write_policy(tmp_path / "p", "bare", {"path": "dns2", "authority": {"type": "dnsimple",
                                                                      "credentials": "dnsimple.env"}})
    bare, dns = load_policies(tmp_path / "p")
    assert (dns.authority.account, dns.authority.zones, dns.authority.api_url) == (
        "1010", ["example.com", "*.org"], "http://127.0.0.1:9")
    assert (bare.authority.account, bare.authority.zones, bare.authority.api_url) == (None, [], None)
    assert dns.authority.credential_keys == ("DNSIMPLE_TOKEN",)
    write_policy(tmp_path / "q", "dns", {"path": str(tmp_path / "p" / "dns"),
                                         "authority": {"type": "dnsimple", "api_url": "ftp://x"}})
    problems = problems_of(tmp_path / "q")
    assert any(p.startswith("dns.yaml: authority.credentials: field required for type dnsimple (a KEY=VALUE file "
                            "with DNSIMPLE_TOKEN)") for p in problems), problems
    assert any(p.startswith("dns.yaml: authority.api_url: ") and "http" in p for p in problems), problems
