"""The policy model: one typed model per section of a policy file and of syncer.yaml,
validated declaratively by pydantic.

Validation is strict (YAML's `yes` is not a string, "7" is not a number) and unknown
keys are errors. Validate with `model_validate(document, context={"file": path})`:
relative paths are then taken from the file's folder, and a policy's name defaults to
the file's stem. syncer.policy.load turns validation errors into
"FILE: dotted.path: message" lines.
"""

import os
import re
import reprlib
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from syncer.log import register_secret
from syncer.policy.credentials import resolve_credentials_path
from syncer.policy.settings import cron_trigger, parse_duration

AUTHORITY_TYPES = ("local", "s3", "smugmug", "bunnycdn", "gitlab", "dnsimple")
SCHEDULED_ACTIONS = ("pull", "verify", "push", "check", "drill", "scrub")
HOOK_ACTIONS = ("pull", "verify", "push", "check", "restore", "drill", "scrub", "repair")
HOOK_NAMES = tuple(f"{when}_{action}" for when in ("before", "after", "on_error", "finally")
                   for action in HOOK_ACTIONS) + ("on_error", "finally")
KEEP_COUNTS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
SUBSET_PATTERN = re.compile(r"^(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)$")
NUMBER_OR_TEXT = WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}]})


def no_nul(text):
    # A NUL byte cannot be part of a path, a glob or a command: the OS refuses it.
    if "\x00" in text:
        raise ValueError("must not contain a NUL byte")
    return text


def text_of(value):
    """Return `value` when it is a non-empty string; raise the error a `Name` field would."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string")
    if not value:
        raise PydanticCustomError("string_too_short", "must be a non-empty string")
    return no_nul(value)


def dataset_name(name):
    """A dataset's name names folders (its manifests, lock, trash and quarantine): one
    plain path component, never a way out of them."""
    if "/" in name or ".." in name or name.startswith("."):
        raise ValueError(f"{reprlib.repr(name)} cannot name a dataset: the manifests, lock, trash and quarantine "
                         "folders are named after it, so it must not contain '/' or '..' nor start with '.'")
    return name


def dataset_path(path):
    if os.path.realpath(path) == "/":  # also //, /srv/.. and a link to /
        raise ValueError("/ cannot be a dataset: it holds the system and syncer's own state; "
                         "name the folder to keep")
    return path


def folder_of(info):
    return Path(info.context["file"]).parent if info.context else Path.cwd()


def local_path(value, info):
    """A relative path is taken from the file's folder, so a policies folder can travel
    with its data."""
    path = Path(text_of(value)).expanduser()
    return path if path.is_absolute() else (folder_of(info) / path).resolve()


def credentials_path(value, info):
    return resolve_credentials_path(text_of(value), folder_of(info))


def repository(value, info):
    """A restic repository given as a relative local path is taken from the file's
    folder; any backend URL (s3:, sftp:, rest:, ...) is kept as written."""
    text = text_of(value)
    if ":" in text.split("/")[0] or text.startswith("/"):
        return text
    return str(local_path(text, info))


def command(value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a shell command (a non-empty string)")
    return no_nul(value)


def cron(expression):
    if len(expression.split()) not in (5, 6):
        raise ValueError(f"{expression!r} is not a cron expression "
                         "(5 fields: minute hour day month weekday; or 6 with seconds first)")
    try:
        cron_trigger(expression)
    except ValueError as error:
        raise ValueError(f"{expression!r} is not a valid cron expression ({error})")
    return expression


def url(value):
    # The URL is a secret (anyone holding it can ping): masked in logs, never echoed.
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    register_secret(value)
    return value


def service_url(value):
    # A service's base URL is no secret (unlike a ping URL): it shows in messages.
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def subset(value):
    if not SUBSET_PATTERN.match(value):
        raise ValueError("must look like 5%, 1/10 or 500M")
    return value


def share(value):
    """scrub.fraction: a share like 5% (YAML hands 0.05 over as a number)."""
    if isinstance(value, float):
        value = f"{value * 100:g}%"
    if not isinstance(value, str) or not re.fullmatch(r"(100|\d{1,2}(\.\d+)?)%", value.strip()):
        raise ValueError(f"{reprlib.repr(value)} is not a share like 5%")
    return value


def duration(hint, allow_zero=True):
    """A duration field: seconds, or text like 30s, 10m, 2h. Its error ends in `hint`."""
    def seconds(value):
        try:
            result = parse_duration(value)
        except ValueError:
            result = None
        if result is None or (result == 0 and not allow_zero):
            raise ValueError(f"{reprlib.repr(value)} is not a duration ({hint})")
        return result

    return Annotated[float, BeforeValidator(seconds), NUMBER_OR_TEXT]


Text = Annotated[str, AfterValidator(no_nul)]
Name = Annotated[str, BeforeValidator(text_of), Field(min_length=1)]
LocalPath = Annotated[Path, BeforeValidator(local_path)]
CredentialsFile = Annotated[Path, BeforeValidator(credentials_path)]
GroupName = Annotated[Name, BeforeValidator(lambda value: str(value) if type(value) is int else value)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Url = Annotated[Text, AfterValidator(url)]
Duration = duration("seconds, or like 30s, 10m, 2h")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LocalAuthority(Model):
    """Another folder on this machine (a NAS mount, a second disk)."""

    credential_keys: ClassVar = ()
    type: Literal["local"]
    path: LocalPath
    credentials: CredentialsFile | None = None


class S3Authority(Model):
    """A bucket (or a prefix of one) on S3 or an S3-compatible server."""

    credential_keys: ClassVar = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    type: Literal["s3"]
    bucket: Name
    prefix: Text = ""
    endpoint_url: Text | None = None
    region: Text | None = None
    credentials: CredentialsFile


class SmugMugAuthority(Model):
    """A SmugMug account's albums (UrlPath globs; all when none are given)."""

    credential_keys: ClassVar = ("SMUGMUG_API_KEY", "SMUGMUG_API_SECRET", "SMUGMUG_TOKEN", "SMUGMUG_TOKEN_SECRET")
    type: Literal["smugmug"]
    nickname: Text | None = None
    albums: list[GroupName] = []
    api_url: Text | None = None
    upload_url: Text | None = None
    credentials: CredentialsFile


class BunnyAuthority(Model):
    """A bunny.net storage zone (or a folder of one)."""

    credential_keys: ClassVar = ("BUNNY_ACCESS_KEY",)
    type: Literal["bunnycdn"]
    zone: Name
    path: Text = ""
    endpoint: Text | None = None
    credentials: CredentialsFile


class GitLabAuthority(Model):
    """GitLab groups: every project is mirrored with git."""

    credential_keys: ClassVar = ("GITLAB_TOKEN",)
    type: Literal["gitlab"]
    url: Name
    groups: list[GroupName]
    include_subgroups: bool = True
    credentials: CredentialsFile


class DNSimpleAuthority(Model):
    """A DNSimple account's zones (name globs; all when none are given)."""

    credential_keys: ClassVar = ("DNSIMPLE_TOKEN",)
    type: Literal["dnsimple"]
    # the account id; default: the token's own (GET /v2/whoami)
    account: Annotated[GroupName, WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]})] | None = None
    zones: list[Name] = []
    api_url: Annotated[Text, AfterValidator(service_url)] | None = None
    credentials: CredentialsFile


Authority = Annotated[LocalAuthority | S3Authority | SmugMugAuthority | BunnyAuthority | GitLabAuthority
                      | DNSimpleAuthority, Field(discriminator="type")]


# Plain dicts once validated: restic forget's --keep-* rules; action -> cron expression.
Retention = TypedDict("Retention", {**dict.fromkeys(KEEP_COUNTS, Count), "keep_within": Text}, total=False)
Schedule = TypedDict("Schedule", dict.fromkeys(SCHEDULED_ACTIONS, Annotated[Text, AfterValidator(cron)]), total=False)
Retention.__pydantic_config__ = Schedule.__pydantic_config__ = ConfigDict(extra="forbid", strict=True)


class OffsiteCopy(Model):
    """A second restic repository that push copies each new snapshot to (3-2-1)."""

    repository: Annotated[str, BeforeValidator(repository)]
    password_file: CredentialsFile
    env_file: CredentialsFile | None = None


class ReadData(Model):
    """How `syncer check` reads every pack of the repository once per cycle: restic's
    --read-data-subset=n/t, n advancing by one each check. Give the cycle as a duration
    (t = the cycle / the interval of schedule.check) or as a number of checks (t)."""

    cycle: duration("like 30d", allow_zero=False) | None = None
    checks: Positive | None = None

    @field_validator("checks")
    @classmethod
    def one_of_cycle_and_checks(cls, value, info):
        if value is not None and info.data.get("cycle") is not None:
            raise ValueError("give cycle or checks, not both")
        return value


class Offsite(Model):
    """The restic repository the dataset is backed up to."""

    repository: Annotated[str, BeforeValidator(repository)]
    password_file: CredentialsFile
    env_file: CredentialsFile | None = None
    retention: Retention = {}
    prune: Literal["never", "always", "daily", "weekly", "monthly"] = "weekly"
    # retention (restic forget) runs when this interval has passed since it last did, not on every push
    forget: Literal["always", "daily", "weekly", "monthly"] = "daily"
    host: Text | None = None
    read_data_subset: Annotated[Text, AfterValidator(subset)] | None = None
    read_data: ReadData | None = None  # every pack read once per cycle (instead of read_data_subset)
    exists: bool = False  # the repository exists already: push never creates it
    # the longest one restic run may take; then it is stopped: restic 0.18 retries a dead
    # uplink for far longer than a nightly window (none by default: a first push may take days)
    timeout: duration("like 6h", allow_zero=False) | None = None
    manifest_root: LocalPath | None = None  # push keeps the manifest in <this>/manifests/<dataset>
    copies: list[OffsiteCopy] = []  # push copies its snapshots to each with `restic copy`


class Notify(Model):
    """Where runs are reported. Keys given in a policy override syncer.yaml's."""

    healthchecks: Url | None = None  # ping URL: /start, /fail are appended; the URL itself means success
    ntfy: Url | None = None  # topic URL
    webhook: Url | None = None  # receives a JSON document per event
    events: Literal["failures", "all"] = "failures"  # failures: failures and recoveries only

    @property
    def configured(self):
        return bool(self.healthchecks or self.ntfy or self.webhook)


class HookCommands(Model):
    @property
    def commands(self):
        """Return {hook name: shell commands} of every hook."""
        return {name: getattr(self, name) for name in HOOK_NAMES}


Hooks = create_model(
    "Hooks", __base__=HookCommands,
    timeout=(duration("like 30s, 10m or 1h", allow_zero=False), 30 * 60.0),
    **{name: (list[Annotated[str, BeforeValidator(command)]], []) for name in HOOK_NAMES})


class Scrub(Model):
    """How much `syncer scrub` re-reads per run, and how fast."""

    fraction: Annotated[str, BeforeValidator(share), NUMBER_OR_TEXT] | None = None
    rate_mib_s: Positive | None = None


class Pull(Model):
    """How `syncer pull` (and `syncer run`) bring the local copy up to date."""

    delete: bool = False
    concurrency: Positive | None = None


class Policy(Model):
    """One dataset: its local copy, its authoritative copy and what syncer does with them."""

    name: Annotated[Name, AfterValidator(dataset_name)] = Field(None, validate_default=True)
    path: Annotated[LocalPath, AfterValidator(dataset_path)]
    exclude: Annotated[tuple[Name, ...], BeforeValidator(lambda value: tuple(value) if isinstance(value, list)
                                                         else value)] = ()
    authority: Authority
    offsite: Offsite | None = None
    schedule: Schedule = Field({}, validate_default=True)  # validated empty too: read_data needs a check
    watch: bool = False
    watch_debounce: Duration = 600.0
    notify: Notify = Notify()
    hooks: Hooks = Hooks()
    scrub: Scrub = Scrub()
    repair: Literal["manual", "auto"] = "manual"
    pull: Pull | None = None
    _source: Path = PrivateAttr(None)  # the policy file
    _credential_names: tuple = PrivateAttr(())
    _restic: str = PrivateAttr("restic")  # the restic binary (syncer.yaml's restic:, SYNCER_RESTIC)

    @field_validator("schedule")
    @classmethod
    def a_read_data_cycle_needs_a_check_schedule(cls, value, info):
        offsite = info.data.get("offsite")
        read_data = offsite and offsite.read_data
        if read_data and read_data.cycle is not None and "check" not in value:
            raise ValueError("has no check: offsite.read_data.cycle needs one to tell how many checks a cycle holds "
                             "(or give offsite.read_data.checks)")
        if read_data and offsite.read_data_subset:
            raise ValueError("offsite.read_data and offsite.read_data_subset exclude each other")
        return value

    @field_validator("name", mode="before")
    @classmethod
    def name_defaults_to_the_file_stem(cls, value, info):
        return Path(info.context["file"]).stem if value in (None, "") and info.context else value

    source = property(lambda self: self._source)
    file_label = property(lambda self: self._source.name)
    # Credentials files named without a folder: under systemd they are read from
    # $CREDENTIALS_DIRECTORY, so the unit must LoadCredential= them.
    credential_names = property(lambda self: self._credential_names)
    restic_binary = property(lambda self: self._restic)

    @property
    def restic_host(self):
        return (self.offsite and self.offsite.host) or self.name


class DaemonTiming(Model):
    jitter: Duration = 60.0
    misfire_grace: Duration = 3600.0
    stop_grace: Duration = 30.0


class Metrics(Model):
    textfile: LocalPath | None = None  # the Prometheus textfile


class Report(Model):
    html: LocalPath | None = None  # the status page (syncer report --html), rewritten after every step


class GlobalSettings(Model):
    """syncer.yaml beside the policies: what is not one dataset's business."""

    notify: Notify = Notify()  # defaults for every dataset
    metrics: Metrics = Metrics()
    report: Report = Report()
    daemon: DaemonTiming = DaemonTiming()
    restic: Text | None = None  # the restic binary: a path, or a name looked up on PATH (default: restic)
    metrics_textfile = property(lambda self: self.metrics.textfile)
    jitter = property(lambda self: self.daemon.jitter)
    misfire_grace = property(lambda self: self.daemon.misfire_grace)
    stop_grace = property(lambda self: self.daemon.stop_grace)


def policy_json_schema():
    """Return the JSON Schema of a policy file, for editors that validate YAML."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Policy.model_json_schema()}
