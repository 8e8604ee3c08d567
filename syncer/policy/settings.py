"""The global settings file `syncer.yaml` beside the policies, and the always-on keys of a
policy (`watch`, `watch_debounce`, `notify`).

syncer.yaml holds what is not one dataset's business: notification defaults, the
Prometheus textfile, and the daemon's timing. Pure: reads one file, no other I/O.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from syncer.errors import PolicyError
from syncer.log import register_secret

GLOBAL_FILE_NAMES = ("syncer.yaml", "syncer.yml")
NOTIFY_KEYS = {"healthchecks": str, "ntfy": str, "webhook": str, "events": str}
NOTIFY_EVENTS = ("failures", "all")  # failures: failures and recoveries only (the default)
METRICS_KEYS = {"textfile": str}
DAEMON_KEYS = {"jitter": object, "misfire_grace": object, "stop_grace": object}
GLOBAL_KEYS = {"notify": dict, "metrics": dict, "daemon": dict}
DEFAULT_WATCH_DEBOUNCE = 600.0
DEFAULT_DAEMON = {"jitter": 60.0, "misfire_grace": 3600.0, "stop_grace": 30.0}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class NotifySettings:
    healthchecks: str | None = None  # ping URL: /start, /fail are appended; the URL itself means success
    ntfy: str | None = None  # topic URL
    webhook: str | None = None  # receives a JSON document per event
    events: str = "failures"

    @property
    def configured(self):
        return bool(self.healthchecks or self.ntfy or self.webhook)


@dataclass(frozen=True)
class GlobalSettings:
    source: Path | None = None
    notify: dict = field(default_factory=dict)  # validated notify keys, defaults for every dataset
    metrics_textfile: Path | None = None
    jitter: float = DEFAULT_DAEMON["jitter"]
    misfire_grace: float = DEFAULT_DAEMON["misfire_grace"]
    stop_grace: float = DEFAULT_DAEMON["stop_grace"]


def parse_duration(value):
    """Return the seconds `value` stands for: a number of seconds, or text like 90s,
    10m, 1.5h, 2d. Raise ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("negative duration")
        return float(value)
    match = DURATION.match(str(value))
    if not match:
        raise ValueError("not a duration")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def validate_duration(value, where):
    try:
        parse_duration(value)
    except ValueError:
        return [f"{where}: {value!r} is not a duration (seconds, or like 30s, 10m, 2h)"]
    return []


def validate_notify(notify, prefix="notify."):
    """Return problems of a `notify` mapping (policy or global)."""
    from syncer.policy.schema import check_mapping

    problems = []
    check_mapping(notify, NOTIFY_KEYS, (), prefix, problems)
    for key in ("healthchecks", "ntfy", "webhook"):
        url = notify.get(key)
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            # The URL is a secret (anyone holding it can ping): never echo it.
            problems.append(f"{prefix}{key}: must be an http:// or https:// URL")
    events = notify.get("events")
    if isinstance(events, str) and events not in NOTIFY_EVENTS:
        problems.append(f"{prefix}events: must be one of {', '.join(NOTIFY_EVENTS)}")
    return problems


def validate_global(doc):
    """Return "dotted.path: message" problems of a parsed syncer.yaml."""
    from syncer.policy.schema import check_mapping

    if doc is None:
        return []
    if not isinstance(doc, dict):
        return ["(top): syncer.yaml must be a mapping of keys to values"]
    problems = []
    check_mapping(doc, GLOBAL_KEYS, (), "", problems)
    if isinstance(doc.get("notify"), dict):
        problems += validate_notify(doc["notify"])
    if isinstance(doc.get("metrics"), dict):
        check_mapping(doc["metrics"], METRICS_KEYS, (), "metrics.", problems)
    if isinstance(doc.get("daemon"), dict):
        check_mapping(doc["daemon"], DAEMON_KEYS, (), "daemon.", problems)
        for key, value in doc["daemon"].items():
            if key in DAEMON_KEYS:
                problems += validate_duration(value, f"daemon.{key}")
    return problems


def global_settings_file(policies_dir):
    """Return the path of syncer.yaml in `policies_dir`, or None when there is none."""
    for name in GLOBAL_FILE_NAMES:
        path = Path(policies_dir) / name
        if path.is_file():
            return path
    return None


def global_settings_problems(policies_dir):
    """Return the problems of syncer.yaml in `policies_dir` (none when it has none), so
    that check-policies and every command report them with the policies' own."""
    try:
        load_global_settings(policies_dir)
    except PolicyError as error:
        return error.problems
    return []


def load_global_settings(policies_dir):
    """Return the GlobalSettings of `policies_dir` (defaults when it has no syncer.yaml).

    Raise PolicyError naming the file and every problem in it.
    """
    path = global_settings_file(policies_dir)
    if path is None:
        return GlobalSettings()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError([f"{path.name}: cannot be read ({error.__class__.__name__})"])
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise PolicyError([f"{path.name}: {where}YAML syntax error: {error.problem or error.context}"])
    except yaml.YAMLError as error:
        raise PolicyError([f"{path.name}: YAML syntax error: {error}"])
    problems = validate_global(doc)
    if problems:
        raise PolicyError([f"{path.name}: {problem}" for problem in problems])
    doc = doc or {}
    notify = dict(doc.get("notify") or {})
    register_urls(notify)
    daemon = {key: parse_duration(value) for key, value in (doc.get("daemon") or {}).items()}
    textfile = (doc.get("metrics") or {}).get("textfile")
    if textfile:
        textfile = Path(textfile).expanduser()
        textfile = textfile if textfile.is_absolute() else (path.parent / textfile).resolve()
    return GlobalSettings(source=path, notify=notify, metrics_textfile=textfile or None,
                          **{key: daemon.get(key, default) for key, default in DEFAULT_DAEMON.items()})


def register_urls(notify):
    """Notification URLs carry tokens (a healthchecks UUID, an ntfy topic): mask them."""
    for key in ("healthchecks", "ntfy", "webhook"):
        if notify.get(key):
            register_secret(notify[key])


def notify_settings(policy, global_settings):
    """Return the NotifySettings of `policy`: its own `notify` keys over the global ones."""
    own = dict(policy.raw.get("notify") or {})
    register_urls(own)
    merged = {**global_settings.notify, **own}
    return NotifySettings(**{key: merged[key] for key in NOTIFY_KEYS if key in merged})


def watch_settings(policy):
    """Return (watch, debounce_seconds) of `policy`."""
    debounce = policy.raw.get("watch_debounce")
    return bool(policy.raw.get("watch")), (DEFAULT_WATCH_DEBOUNCE if debounce is None
                                            else parse_duration(debounce))


WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression, jitter=None, timezone=None):
    """Return an apscheduler CronTrigger for a cron expression: five fields (minute hour
    day month weekday) as in crontab(5), or six with seconds first.

    Weekday numbers mean what cron means (0 and 7 Sunday): apscheduler 3 itself would
    take 0 as Monday. Raise ValueError for an invalid expression.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"{expression!r} has {len(fields)} fields, not 5 (or 6 with seconds first)")
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    weekday = re.sub(r"(?<![/\d])\d+", lambda m: weekday_name(m.group(0)), weekday)
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=weekday,
                       jitter=jitter or None, timezone=timezone)


def weekday_name(number):
    if int(number) > 7:
        raise ValueError(f"weekday {number} is out of range (0-7)")
    return WEEKDAY_NAMES[int(number)]


def cron_interval(expression, now=None, samples=8):
    """Return the longest gap, in seconds, between successive times of a cron expression
    (over the next `samples` of them): the interval a stale check should allow."""
    from datetime import UTC, datetime

    trigger = cron_trigger(expression, timezone=UTC)
    moment = datetime.fromtimestamp(now, UTC) if now else datetime.now(UTC)
    times = []
    previous = None
    for _ in range(samples + 1):
        moment = trigger.get_next_fire_time(previous, moment)
        if moment is None:
            break
        times.append(moment)
        previous = moment
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
    return max(gaps) if gaps else None
