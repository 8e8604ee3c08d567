"""Load and validate every policy in a directory and its syncer.yaml, reporting all
problems at once, each as "FILE: dotted.path: message". The schema is the models of
syncer.policy.model; what only this machine can say (paths, credentials files, the
restic binary) is checked after it."""

import difflib
import logging
import os
import shutil
import types
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from syncer.errors import PolicyError, UsageError
from syncer.fsio import describe_interrupted_swap, interrupted_swaps
from syncer.policy.credentials import check_credentials_file
from syncer.policy.model import AUTHORITY_TYPES, GlobalSettings, Policy

POLICY_SUFFIXES = (".yaml", ".yml")
GLOBAL_FILE_NAMES = ("syncer.yaml", "syncer.yml")
# Far beyond any real policy: past these a file is hostile or a mistake, and is refused
# before it can cost memory or time.
MAX_FILE_MIB = 1
MAX_DEPTH = 64
MAX_VALUES = 100_000  # with every alias expanded
MACHINE_PARTS = ("path", "authority", "offsite")
log = logging.getLogger("syncer.policy")
TYPE_NAMES = {"string_type": "a string", "int_type": "a whole number", "bool_type": "true or false",
              "list_type": "a list", "tuple_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
              "model_attributes_type": "a mapping"}


def policy_files(directory):
    """Return the policy files directly inside `directory`, sorted by name (syncer.yaml
    holds global settings, not a dataset)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([f"{directory}: policies directory does not exist"])
    return sorted(p for p in directory.iterdir()
                  if p.suffix in POLICY_SUFFIXES and p.is_file() and p.name not in GLOBAL_FILE_NAMES)


def policies_signature(directory):
    """What tells that a file of the policies directory changed, for those that read it
    again: the name, inode, size and mtime of each of its YAML files (syncer.yaml's
    too). None without a directory; () when it cannot be listed."""
    if directory is None:
        return None
    files = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith(POLICY_SUFFIXES):
                    try:
                        info = entry.stat()
                    except OSError:  # gone since listed, or a dangling link (an editor's lock): not a policy
                        continue
                    files.append((entry.name, entry.inode(), info.st_size, info.st_mtime_ns))
    except OSError:
        return ()  # gone or unreadable: a change too, which reading it again then names
    return sorted(files)


def reread_policies(directory, state_dir=None):
    """Read the policies again for a process that keeps running (the daemon, serve):
    return (policies, problems), problems being every file's, or why the directory
    could not be read. Those who call it apply a set only without problems: a file left
    out of an edit would silently stop its dataset."""
    try:
        return read_policies(directory, state_dir=state_dir)
    except PolicyError as error:
        return [], error.problems
    except OSError as error:
        return [], [f"{directory}: {error.strerror or error}"]


def load_policies(directory, check_paths=True, state_dir=None):
    """Given a policies directory, return the list of Policy objects.

    Raise PolicyError holding every problem of every file (syncer.yaml's too), each as
    "FILE: dotted.path: message". `check_paths` and `state_dir` are read_policies'.
    """
    policies, problems = read_policies(directory, check_paths, state_dir)
    if problems:
        raise PolicyError(problems)
    return policies


def read_policies(directory, check_paths=False, state_dir=None):
    """Given a policies directory, return (policies, problems): the datasets of the files
    without a problem, and every problem of every file (syncer.yaml's too), each as
    "FILE: dotted.path: message". One broken file leaves the others usable.

    Two files with one dataset name: the second is left out. Datasets whose paths nest
    or coincide: both are left out. With `state_dir` (the one this run uses): a dataset
    inside it is left out; a state directory inside a dataset is excluded from it. With
    `check_paths`, what the policy names on this machine is checked too (check_machine).
    Raise PolicyError when there is no policy file at all.
    """
    policies, problems = [], []
    files = policy_files(directory)
    if not files:
        raise PolicyError([f"{directory}: no policy files (*.yaml) found"])
    try:
        binary, settings_problems = restic_binary(load_global_settings(directory)), []
    except PolicyError as error:  # reported after the datasets' problems
        binary, settings_problems = restic_binary(GlobalSettings()), error.problems
    for path in files:
        policy, file_problems = load_policy_file(path, check_paths=False)
        problems += [f"{path.name}: {problem}" for problem in file_problems]
        if policy:
            policy._restic = binary
            policies.append(policy)
    if check_paths:  # every file's, before any is left out below: check-policies reports everything
        machine = {policy.source: check_machine(policy) for policy in policies}
        problems += [f"{policy.file_label}: {problem}" for policy in policies for problem in machine[policy.source]]
    seen = {}
    for policy in policies:
        if policy.name in seen:
            problems.append(f"{policy.source.name}: name: dataset name {policy.name!r} "
                            f"is already used by {seen[policy.name].source.name}")
        else:
            seen[policy.name] = policy
    policies = list(seen.values())
    apart_ones, clashes = apart(policies)
    if state_dir is not None:  # every dataset, overlapping or not: check-policies reports each problem
        policies, state_problems = place_state_directory(policies, state_dir)
        clashes += state_problems
    problems += clashes
    names_apart = {policy.name for policy in apart_ones}
    policies = [policy for policy in policies if policy.name in names_apart]
    if check_paths:
        policies = [policy for policy in policies if not machine[policy.source]]
    problems += settings_problems
    return policies, problems


def restic_binary(settings):
    """The restic syncer runs: SYNCER_RESTIC, else syncer.yaml's `restic:`, else `restic`
    on PATH. A name without a slash is looked up on PATH when restic is started."""
    return os.environ.get("SYNCER_RESTIC") or settings.restic or "restic"


def real_path(path):
    return Path(os.path.realpath(path))


def apart(policies):
    """Return (policies, problems): the datasets whose paths neither hold nor lie inside
    another dataset's. Both of an overlapping pair are left out: a verify of one would
    report the other's files, a pull with delete would remove them."""
    problems, refused = [], set()
    for index, one in enumerate(policies):
        for other in policies[index + 1:]:
            mine, theirs = real_path(other.path), real_path(one.path)
            relation = ("is" if mine == theirs else "is inside" if theirs in mine.parents
                        else "holds" if mine in theirs.parents else None)
            if relation:
                problems.append(f"{other.file_label}: path: dataset path {other.path} {relation} dataset "
                                f"{one.name}'s path {one.path} ({one.file_label}); datasets must not overlap: "
                                f"neither runs until they are apart")
                refused.update((one.name, other.name))
    return [policy for policy in policies if policy.name not in refused], problems


def place_state_directory(policies, state_dir):
    """Return (policies, problems) for the state directory this run uses. A dataset
    inside it (or equal to it) is refused. A state directory inside a dataset (the XDG
    default, ~/.local/state/syncer, when a user keeps their home) is excluded from that
    dataset, and said: verify would report syncer's own database, push would snapshot it
    mid-write."""
    state = real_path(state_dir)
    kept, problems = [], []
    for policy in policies:
        path = real_path(policy.path)
        if path == state or state in path.parents:
            problems.append(f"{policy.file_label}: path: dataset path {policy.path} is inside the state directory "
                            f"{state_dir}; keep datasets and syncer's state apart (--state-dir or SYNCER_STATE_DIR "
                            f"chooses the state directory)")
            continue
        if path in state.parents:
            relative = state.relative_to(path).as_posix()
            if any(char in relative for char in "*?[]\\"):
                problems.append(f"{policy.file_label}: path: dataset path {policy.path} holds the state directory "
                                f"{state_dir}, whose name has glob characters, so it cannot be excluded; choose "
                                f"another with --state-dir or SYNCER_STATE_DIR")
                continue
            log.info("%s: the state directory %s is inside the dataset, so it is excluded from it "
                     "(as exclude: /%s)", policy.name, state_dir, relative)
            policy = policy.model_copy(update={"exclude": (*policy.exclude, f"/{relative}")})
        kept.append(policy)
    return kept, problems


def load_policy_file(path, check_paths=True):
    """Return (Policy or None, problems) for one policy file."""
    document, problems = read_yaml(path)
    if problems:
        return None, problems
    if not isinstance(document, dict):
        return None, ["(top): a policy must be a mapping of keys to values"]
    try:
        policy = Policy.model_validate(document, context={"file": path})
    except ValidationError as error:
        return None, problems_of(error, Policy)
    policy._source = path
    offsite = document.get("offsite") or {}
    written = (document["authority"].get("credentials"), offsite.get("password_file"), offsite.get("env_file"))
    policy._credential_names = tuple(name for name in written if name and "/" not in name)
    return policy, check_machine(policy) if check_paths else []


def load_global_settings(policies_dir):
    """Return the GlobalSettings of syncer.yaml in `policies_dir` (defaults when there is
    none). Raise PolicyError naming the file and every problem in it."""
    path = next((Path(policies_dir) / name for name in GLOBAL_FILE_NAMES if (Path(policies_dir) / name).is_file()),
                None)
    if path is None:
        return GlobalSettings()
    document, problems = read_yaml(path)
    if not problems and not isinstance(document or {}, dict):
        problems = ["(top): syncer.yaml must be a mapping of keys to values"]
    if not problems:
        try:
            return GlobalSettings.model_validate(document or {}, context={"file": path})
        except ValidationError as error:
            problems = problems_of(error, GlobalSettings)
    raise PolicyError([f"{path.name}: {problem}" for problem in problems])


class Refused(yaml.MarkedYAMLError):
    """A YAML document past the limits above."""


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses nesting deeper than MAX_DEPTH (Python's recursion
    limit would end it in an internal error) and documents that hold more than
    MAX_VALUES values once aliases are expanded (a "billion laughs")."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0
        self.values = {}  # id(node) -> the values in it, aliases expanded

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self.values:  # still being composed: the alias is inside its anchor
                raise Refused(None, None, "an alias inside the collection it refers to is refused", mark)
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refused(None, None, f"nesting deeper than {MAX_DEPTH} levels is refused", mark)
        node = super().compose_node(parent, index)
        self.depth -= 1
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [child for pair in node.value for child in pair] if isinstance(node, yaml.MappingNode) else ())
        self.values[id(node)] = 1 + sum(self.values[id(child)] for child in children)
        if self.values[id(node)] > MAX_VALUES:
            raise Refused(None, None, f"more than {MAX_VALUES} values (aliases expanded) is refused", mark)
        return node


def read_yaml(path):
    """Return (document, problems) of the YAML file at `path`."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_MIB * 2**20 + 1)
    except OSError as error:
        return None, [f"cannot be read ({error.__class__.__name__}: {error})"]
    if len(data) > MAX_FILE_MIB * 2**20:
        return None, [f"larger than {MAX_FILE_MIB} MiB, the most a policy file may hold: refused unparsed"]
    try:
        return yaml.load(data.decode("utf-8"), Loader=BoundedLoader), []
    except UnicodeDecodeError as error:
        return None, [f"cannot be read: not UTF-8 text ({error.reason} at byte {error.start})"]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        kind = "" if isinstance(error, Refused) else "YAML syntax error: "
        return None, [f"{where}{kind}{error.problem or error.context}"]
    except yaml.YAMLError as error:  # the reader's: a character YAML does not allow
        return None, [f"YAML syntax error: {' '.join(str(error).split())}"]


def problems_of(error, model):
    """Return the "dotted.path: message" lines of a ValidationError of `model`."""
    return [problem_of(detail, model) for detail in error.errors()]


def problem_of(detail, model):
    path, holder, expected = locate(model, detail["loc"])
    kind, value, context = detail["type"], detail["input"], detail.get("ctx") or {}
    if kind in TYPE_NAMES:
        message = f"must be {TYPE_NAMES[kind]}, not {describe(value)}"
    elif kind == "missing" and detail["loc"][-1] == "credentials" and getattr(holder, "credential_keys", ()):
        message = (f"field required for type {typing.get_args(holder.model_fields['type'].annotation)[0]} "
                   f"(a KEY=VALUE file with {', '.join(holder.credential_keys)})")
    elif kind == "missing":
        message = "field required"
    elif kind in ("extra_forbidden", "invalid_key"):
        message = "unknown key" + suggest(str(detail["loc"][-1]), fields_of(holder))
    elif kind == "literal_error":
        message = f"must be one of {', '.join(typing.get_args(expected))}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):  # only `authority` is a tagged union
        path, choices = f"{path}.type", f" (one of {', '.join(AUTHORITY_TYPES)})"
        message = ("field required" + choices if kind == "union_tag_not_found" else
                   f"unknown authority type {context['tag']!r}" + suggest(context["tag"], AUTHORITY_TYPES) + choices)
    elif kind == "greater_than_equal":
        message = "must not be negative" if context["ge"] == 0 else f"must be at least {context['ge']}"
    elif kind == "value_error":
        message = str(context["error"])
    else:
        message = detail["msg"]
    return f"{path or '(top)'}: {message}"


def locate(model, loc):
    """Follow a pydantic error location through the models. Return the dotted path as
    the user wrote it, the model (or TypedDict) holding its last key, and the type
    expected there."""
    names, holder, expected = [], None, model
    for step in loc:
        expected = bare(expected)
        if typing.get_origin(expected) in (typing.Union, types.UnionType):  # tagged: the step names the member
            expected = next(member for member in typing.get_args(expected)
                            if typing.get_args(member.model_fields["type"].annotation) == (step,))
            continue
        names.append(str(step))
        holder = expected
        expected = fields_of(expected).get(step) if isinstance(step, str) else next(iter(typing.get_args(expected)),
                                                                                    None)
    return ".".join(names), holder, bare(expected)


def fields_of(kind):
    """Return {key: type} of a model or a TypedDict."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return {name: field.annotation for name, field in kind.model_fields.items()}
    return getattr(kind, "__annotations__", {})


def bare(kind):
    """Return `kind` without Annotated[...] and without `| None`."""
    while typing.get_origin(kind) in (typing.Annotated, typing.Union, types.UnionType):
        members = [member for member in typing.get_args(kind) if member is not type(None)]
        if typing.get_origin(kind) is not typing.Annotated and len(members) > 1:
            return kind
        kind = members[0]
    return kind


def describe(value):
    if value is None:
        return "empty"
    return {str: "a string", list: "a list", dict: "a mapping", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def suggest(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_machine(policy, parts=MACHINE_PARTS, missing_only=False):
    """Return problems with what `parts` of the policy need on this machine: "path" the
    dataset's folder, "authority" a local authority's folder and its credentials file,
    "offsite" the password and env files and the restic binary. With `missing_only`,
    only what is not there (a credentials file readable by others is left to its reader)."""
    problems = []
    if "path" in parts:
        if not policy.path.exists():
            swaps = interrupted_swaps(policy.path)
            problems.append(f"path: dataset path {policy.path} does not exist"
                            + (f" ({describe_interrupted_swap(policy.path, swaps[-1])})" if swaps else ""))
        elif not policy.path.is_dir():
            problems.append(f"path: dataset path {policy.path} is not a directory")
    files = []
    if "authority" in parts:
        if policy.authority.type == "local" and not policy.authority.path.is_dir():
            problems.append(f"authority.path: {policy.authority.path} does not exist or is not a directory")
        files.append(("authority.credentials", policy.authority.credentials))
    if "offsite" in parts and policy.offsite:
        files += [("offsite.password_file", policy.offsite.password_file),
                  ("offsite.env_file", policy.offsite.env_file)]
    for key, path in files:
        problem = path and check_credentials_file(path)
        if problem and not (missing_only and path.exists()):
            if key.startswith("offsite"):  # a password and an environment, not credentials files
                problem = problem.replace("credentials file", "file")
            problems.append(f"{key}: {problem}")
    if "offsite" in parts:
        problems += check_restic(policy)
    return problems


def check_restic(policy):
    """Return the problem with the restic binary `policy`'s offsite section needs, if any."""
    if not policy.offsite or shutil.which(policy.restic_binary):
        return []
    if policy.restic_binary == "restic":
        return ["offsite: the restic binary was not found on PATH (apt-get install -y restic)"]
    return [f"offsite: the restic binary {policy.restic_binary} (syncer.yaml restic: or SYNCER_RESTIC) was not "
            f"found or is not executable"]


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
