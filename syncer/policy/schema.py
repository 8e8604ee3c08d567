"""Schema checks for one parsed policy document.

Every problem is collected, each as "dotted.path: message", so one run of
check-policies shows them all.
"""

import difflib
import re

from syncer.policy.model import AUTHORITY_TYPES, SCHEDULED_ACTIONS

TOP_KEYS = {
    "name": str,
    "path": str,
    "exclude": list,
    "authority": dict,
    "offsite": dict,
    "schedule": dict,
    "watch": bool,  # always-on keys: see syncer.policy.settings
    "watch_debounce": object,
    "notify": dict,
    "hooks": dict,
    "scrub": dict,
    "repair": str,
    "pull": dict,
}
PULL_KEYS = {"delete": bool, "concurrency": int}  # see syncer.actions.pull
REQUIRED_TOP = ("path", "authority")

AUTHORITY_KEYS = {
    "local": {"path": str},
    "s3": {"bucket": str, "prefix": str, "endpoint_url": str, "region": str},
    "smugmug": {"nickname": str, "albums": list, "api_url": str, "upload_url": str},
    "bunnycdn": {"zone": str, "path": str, "endpoint": str},
    "gitlab": {"url": str, "groups": list, "include_subgroups": bool},
}
AUTHORITY_REQUIRED = {
    "local": ("path",),
    "s3": ("bucket",),
    "smugmug": (),
    "bunnycdn": ("zone",),
    "gitlab": ("url", "groups"),
}
# Keys each authority type needs in its credentials file.
CREDENTIAL_KEYS = {
    "local": (),
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "smugmug": ("SMUGMUG_API_KEY", "SMUGMUG_API_SECRET", "SMUGMUG_TOKEN", "SMUGMUG_TOKEN_SECRET"),
    "bunnycdn": ("BUNNY_ACCESS_KEY",),
    "gitlab": ("GITLAB_TOKEN",),
}
OFFSITE_KEYS = {
    "repository": str,
    "password_file": str,
    "env_file": str,
    "retention": dict,
    "prune": str,
    "host": str,
    "read_data_subset": str,
}
RETENTION_KEYS = {
    "keep_last": int,
    "keep_hourly": int,
    "keep_daily": int,
    "keep_weekly": int,
    "keep_monthly": int,
    "keep_yearly": int,
    "keep_within": str,
}
PRUNE_VALUES = ("never", "always", "daily", "weekly", "monthly")
TYPE_NAMES = {str: "a string", list: "a list", dict: "a mapping", int: "a whole number", bool: "true or false"}
SUBSET_PATTERN = re.compile(r"^(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)$")


def validate_document(doc):
    """Given a parsed YAML document, return a list of "dotted.path: message" problems."""
    if not isinstance(doc, dict):
        return ["(top): a policy must be a mapping of keys to values"]
    problems = []
    check_mapping(doc, TOP_KEYS, REQUIRED_TOP, "", problems)
    if isinstance(doc.get("exclude"), list):
        for position, pattern in enumerate(doc["exclude"]):
            if not isinstance(pattern, str) or not pattern:
                problems.append(f"exclude.{position}: must be a non-empty string")
    if isinstance(doc.get("authority"), dict):
        problems += validate_authority(doc["authority"])
    if isinstance(doc.get("offsite"), dict):
        problems += validate_offsite(doc["offsite"])
    if isinstance(doc.get("schedule"), dict):
        problems += validate_schedule(doc["schedule"])
    problems += validate_always_on(doc)
    if isinstance(doc.get("hooks"), dict):
        problems += validate_hooks(doc["hooks"])
    problems += validate_integrity(doc)
    if isinstance(doc.get("pull"), dict):
        check_mapping(doc["pull"], PULL_KEYS, (), "pull.", problems)
        if is_type(doc["pull"].get("concurrency"), int) and doc["pull"]["concurrency"] < 1:
            problems.append("pull.concurrency: must be at least 1")
    return problems


def validate_always_on(doc):
    from syncer.policy.settings import validate_duration, validate_notify

    problems = []
    if "watch_debounce" in doc:
        problems += validate_duration(doc["watch_debounce"], "watch_debounce")
    if isinstance(doc.get("notify"), dict):
        problems += validate_notify(doc["notify"])
    return problems


def validate_authority(authority):
    problems = []
    kind = authority.get("type")
    if kind is None:
        return ["authority.type: field required (one of " + ", ".join(AUTHORITY_TYPES) + ")"]
    if kind not in AUTHORITY_TYPES:
        return [f"authority.type: unknown authority type {kind!r}" + suggest(str(kind), AUTHORITY_TYPES)
                + " (one of " + ", ".join(AUTHORITY_TYPES) + ")"]
    allowed = dict(AUTHORITY_KEYS[kind], type=str, credentials=str)
    check_mapping(authority, allowed, AUTHORITY_REQUIRED[kind], "authority.", problems)
    if CREDENTIAL_KEYS[kind] and "credentials" not in authority:
        problems.append(f"authority.credentials: field required for type {kind} "
                        f"(a KEY=VALUE file with {', '.join(CREDENTIAL_KEYS[kind])})")
    for key in ("albums", "groups"):
        if isinstance(authority.get(key), list):
            for position, item in enumerate(authority[key]):
                if not isinstance(item, (str, int)) or item == "":
                    problems.append(f"authority.{key}.{position}: must be a non-empty string")
    return problems


def validate_offsite(offsite):
    problems = []
    check_mapping(offsite, OFFSITE_KEYS, ("repository", "password_file"), "offsite.", problems)
    retention = offsite.get("retention")
    if isinstance(retention, dict):
        check_mapping(retention, RETENTION_KEYS, (), "offsite.retention.", problems)
        for key, value in retention.items():
            if RETENTION_KEYS.get(key) is int and isinstance(value, int) and value < 0:
                problems.append(f"offsite.retention.{key}: must not be negative")
    if isinstance(offsite.get("prune"), str) and offsite["prune"] not in PRUNE_VALUES:
        problems.append(f"offsite.prune: must be one of {', '.join(PRUNE_VALUES)}")
    subset = offsite.get("read_data_subset")
    if isinstance(subset, str) and not SUBSET_PATTERN.match(subset):
        problems.append("offsite.read_data_subset: must look like 5%, 1/10 or 500M")
    return problems


def validate_schedule(schedule):
    problems = []
    check_mapping(schedule, {action: str for action in SCHEDULED_ACTIONS}, (), "schedule.", problems)
    for action, expression in schedule.items():
        if action in SCHEDULED_ACTIONS and isinstance(expression, str):
            problem = check_cron(expression)
            if problem:
                problems.append(f"schedule.{action}: {problem}")
    return problems


HOOK_ACTIONS = ("pull", "verify", "push", "check", "restore", "drill", "scrub", "repair")
HOOK_KEYS = {f"{when}_{action}": list for when in ("before", "after", "on_error", "finally")
             for action in HOOK_ACTIONS}
HOOK_KEYS.update({"on_error": list, "finally": list, "timeout": str})


def validate_hooks(hooks):
    """Hook lists hold shell command strings; timeout is a duration like 30s, 10m, 1h."""
    problems = []
    hooks = {key: str(value) if key == "timeout" and isinstance(value, int) else value
             for key, value in hooks.items()}
    check_mapping(hooks, HOOK_KEYS, (), "hooks.", problems)
    for key, commands in hooks.items():
        if isinstance(commands, list) and key in HOOK_KEYS:
            for position, command in enumerate(commands):
                if not isinstance(command, str) or not command.strip():
                    problems.append(f"hooks.{key}.{position}: must be a shell command (a non-empty string)")
    if isinstance(hooks.get("timeout"), str):
        from syncer.policy.settings import parse_duration

        try:
            if parse_duration(hooks["timeout"]) <= 0:
                raise ValueError("a zero timeout")
        except ValueError:
            problems.append(f"hooks.timeout: {hooks['timeout']!r} is not a duration (like 30s, 10m or 1h)")
    return problems


SCRUB_KEYS = {"fraction": str, "rate_mib_s": int}
REPAIR_VALUES = ("manual", "auto")


def validate_integrity(doc):
    """scrub: {fraction: "5%", rate_mib_s: 50}; repair: manual | auto."""
    problems = []
    scrub = doc.get("scrub")
    if isinstance(scrub, dict):
        scrub = {k: f"{v * 100:g}%" if k == "fraction" and isinstance(v, float) else v for k, v in scrub.items()}
        check_mapping(scrub, SCRUB_KEYS, (), "scrub.", problems)
        fraction = scrub.get("fraction")
        if isinstance(fraction, str) and not re.fullmatch(r"(100|\d{1,2}(\.\d+)?)%", fraction.strip()):
            problems.append(f"scrub.fraction: {fraction!r} is not a share like 5%")
        if isinstance(scrub.get("rate_mib_s"), int) and scrub["rate_mib_s"] <= 0:
            problems.append("scrub.rate_mib_s: must be a positive number of MiB/s")
    if "repair" in doc and doc["repair"] not in REPAIR_VALUES:
        problems.append(f"repair: must be one of {', '.join(REPAIR_VALUES)}")
    return problems


def check_cron(expression):
    """Return why `expression` is not a valid cron expression, or None. Five fields
    (minute hour day month weekday), or six with seconds first (for short test cycles)."""
    from syncer.policy.settings import cron_trigger

    if len(expression.split()) not in (5, 6):
        return (f"{expression!r} is not a cron expression "
                "(5 fields: minute hour day month weekday; or 6 with seconds first)")
    try:
        cron_trigger(expression)
    except ValueError as error:
        return f"{expression!r} is not a valid cron expression ({error})"
    return None


def check_mapping(mapping, allowed, required, prefix, problems):
    """Append to `problems` every unknown key, wrong type and missing required key."""
    for key, value in mapping.items():
        if key not in allowed:
            problems.append(f"{prefix}{key}: unknown key" + suggest(str(key), allowed))
            continue
        expected = allowed[key]
        if not is_type(value, expected):
            problems.append(f"{prefix}{key}: must be {TYPE_NAMES[expected]}, not {describe(value)}")
        # A NUL byte cannot be part of a path, a glob or a command: the OS refuses it.
        for position, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, str) and "\x00" in item:
                where = f"{prefix}{key}.{position}" if isinstance(value, list) else f"{prefix}{key}"
                problems.append(f"{where}: must not contain a NUL byte")
    for key in required:
        if mapping.get(key) in (None, ""):
            problems.append(f"{prefix}{key}: field required")


def is_type(value, expected):
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def describe(value):
    if value is None:
        return "empty"
    return {str: "a string", list: "a list", dict: "a mapping", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def suggest(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
