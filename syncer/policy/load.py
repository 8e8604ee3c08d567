"""Load and validate every policy in a directory, reporting all problems at once."""

import shutil
from pathlib import Path

import yaml

from syncer.errors import PolicyError, UsageError
from syncer.policy.credentials import check_credentials_file, resolve_credentials_path
from syncer.policy.model import Authority, Offsite, Policy
from syncer.policy.schema import suggest, validate_document
from syncer.policy.settings import GLOBAL_FILE_NAMES, global_settings_problems

POLICY_SUFFIXES = (".yaml", ".yml")


def policy_files(directory):
    """Return the policy files directly inside `directory`, sorted by name (syncer.yaml
    holds global settings, not a dataset)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([f"{directory}: policies directory does not exist"])
    return sorted(p for p in directory.iterdir()
                  if p.suffix in POLICY_SUFFIXES and p.is_file() and p.name not in GLOBAL_FILE_NAMES)


def load_policies(directory, check_paths=True):
    """Given a policies directory, return the list of Policy objects.

    Raise PolicyError holding every problem of every file, each as
    "FILE: dotted.path: message". With `check_paths`, also check what exists on this
    machine: the dataset path, credentials files and the restic binary.
    """
    policies, problems = [], []
    files = policy_files(directory)
    if not files:
        raise PolicyError([f"{directory}: no policy files (*.yaml) found"])
    for path in files:
        policy, file_problems = load_policy_file(path, check_paths)
        problems += [f"{path.name}: {problem}" for problem in file_problems]
        if policy:
            policies.append(policy)
    seen = {}
    for policy in policies:
        if policy.name in seen:
            problems.append(f"{policy.source.name}: name: dataset name {policy.name!r} "
                            f"is already used by {seen[policy.name].source.name}")
        else:
            seen[policy.name] = policy
    problems += global_settings_problems(directory)
    if problems:
        raise PolicyError(problems)
    return policies


def load_policy_file(path, check_paths=True):
    """Return (Policy or None, problems) for one policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, [f"cannot be read ({error.__class__.__name__}: {error})"]
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, [f"{where}YAML syntax error: {error.problem or error.context}"]
    except yaml.YAMLError as error:
        return None, [f"YAML syntax error: {error}"]
    problems = validate_document(doc)
    if problems:
        return None, problems
    policy = build_policy(path, doc)
    if check_paths:
        problems += check_machine(policy)
    return policy, problems


def build_policy(path, doc):
    """Build a Policy from a validated document. Relative paths are taken from the
    policy file's directory, so a policies folder can travel with its data."""
    base = path.parent
    authority_doc = dict(doc["authority"])
    kind = authority_doc.pop("type")
    credentials = authority_doc.pop("credentials", None)
    if kind == "local":
        authority_doc["path"] = str(resolve(base, authority_doc["path"]))
    authority = Authority(
        type=kind,
        settings=authority_doc,
        credentials=resolve_credentials_path(credentials, base) if credentials else None,
    )
    offsite = None
    if doc.get("offsite"):
        section = doc["offsite"]
        offsite = Offsite(
            repository=resolve_repository(base, section["repository"]),
            password_file=resolve_credentials_path(section["password_file"], base),
            env_file=resolve_credentials_path(section["env_file"], base) if section.get("env_file") else None,
            retention=dict(section.get("retention") or {}),
            prune=section.get("prune", "weekly"),
            host=section.get("host"),
            read_data_subset=section.get("read_data_subset"),
        )
    return Policy(
        name=doc.get("name") or path.stem,
        source=path,
        path=resolve(base, doc["path"]),
        authority=authority,
        exclude=tuple(doc.get("exclude") or ()),
        offsite=offsite,
        schedule=dict(doc.get("schedule") or {}),
        raw=doc,
    )


def resolve(base, value):
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def resolve_repository(base, repository):
    """A restic repository given as a relative local path is taken from the policy's
    directory; any backend URL (s3:, sftp:, rest:, ...) is kept as written."""
    if ":" in repository.split("/")[0] or repository.startswith("/"):
        return repository
    return str(resolve(base, repository))


def check_machine(policy):
    """Return problems with what the policy needs on this machine."""
    problems = []
    if not policy.path.exists():
        problems.append(f"path: dataset path {policy.path} does not exist")
    elif not policy.path.is_dir():
        problems.append(f"path: dataset path {policy.path} is not a directory")
    if policy.authority.type == "local":
        root = Path(policy.authority.settings["path"])
        if not root.is_dir():
            problems.append(f"authority.path: {root} does not exist or is not a directory")
    if policy.authority.credentials:
        problem = check_credentials_file(policy.authority.credentials)
        if problem:
            problems.append(f"authority.credentials: {problem}")
    if policy.offsite:
        for key in ("password_file", "env_file"):
            path = getattr(policy.offsite, key)
            problem = path and check_credentials_file(path)
            if problem:
                problems.append(f"offsite.{key}: {problem.replace('credentials file', 'file')}")
        if not shutil.which("restic"):
            problems.append("offsite: the restic binary was not found on PATH (apt-get install -y restic)")
    return problems


def select_policies(policies, names):
    """Return the policies named in `names` (all when empty), in the order given.
    Raise UsageError naming any unknown dataset."""
    if not names:
        return list(policies)
    by_name = {policy.name: policy for policy in policies}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        hints = "".join(suggest(name, by_name) for name in unknown)
        raise UsageError(f"unknown dataset {', '.join(map(repr, unknown))}{hints}; "
                         f"known: {', '.join(sorted(by_name))}")
    return [by_name[name] for name in names]
