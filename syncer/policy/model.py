"""The policy model: plain value objects built by syncer.policy.load."""

from dataclasses import dataclass, field
from pathlib import Path

AUTHORITY_TYPES = ("local", "s3", "smugmug", "bunnycdn", "gitlab")
SCHEDULED_ACTIONS = ("pull", "verify", "push", "check", "drill", "scrub")


@dataclass(frozen=True)
class Authority:
    type: str
    settings: dict  # type-specific keys, validated (see schema.AUTHORITY_KEYS)
    credentials: Path | None = None

    def get(self, key, default=None):
        return self.settings.get(key, default)


@dataclass(frozen=True)
class Offsite:
    repository: str
    password_file: Path
    env_file: Path | None = None
    retention: dict = field(default_factory=dict)
    prune: str = "weekly"
    host: str | None = None
    read_data_subset: str | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    source: Path  # the policy file
    path: Path  # the local copy
    authority: Authority
    exclude: tuple = ()
    offsite: Offsite | None = None
    schedule: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def file_label(self):
        return self.source.name

    @property
    def restic_host(self):
        return (self.offsite and self.offsite.host) or self.name
