"""`syncer doctor`: prove the whole setup with one command, before the first night run.

Each check is a dict {"dataset": NAME or None, "check", "status", "detail", "fix"}:
status is pass, warn, fail or skip, and every warn or fail says the fix in words. The
policies are loaded without requiring what they name on this machine (paths,
credentials files), so a missing folder or a too-open file is a failed check of its
dataset, not a policy error. The authority is asked through the endpoint contract's
check_access(), so a new authority needs nothing here. Doctor writes nothing to a
dataset or a repository (restic is asked with --no-lock) and pings no notification URL.
"""

import os
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from syncer.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, AuthenticationError, PolicyError, SyncerError
from syncer.policy.credentials import check_credentials_file, read_credentials
from syncer.policy.load import load_global_settings, read_policies, select_policies
from syncer.policy.model import GlobalSettings
from syncer.policy.settings import notify_settings

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
LOW_FREE_SHARE = 0.10  # below this share of free space a filesystem is a warn
SKEW_WARN_SECONDS, SKEW_FAIL_SECONDS = 5 * 60, 15 * 60  # S3 refuses signatures past 15 minutes
STALE_SNAPSHOT_DAYS = 7
QUICK_RETRY = {"attempts": 2, "base_delay": 0.5, "max_delay": 1.0, "max_wait": 5.0}
UNIT_DIR = Path("/etc/systemd/system")


def check(dataset, name, status, detail, fix=None):
    return {"dataset": dataset, "check": name, "status": status, "detail": detail, "fix": fix}


def run_doctor(policies_dir, state_dir, names=(), unit_dir=UNIT_DIR):
    """Check the global setup and each dataset named in `names` (all when empty).
    Return {"checks": [...], "exit_code": 0 pass/warn, 1 any fail, 2 invalid policies}.
    Raise PolicyError when there is no policy file at all, UsageError for an unknown name."""
    policies, problems = read_policies(policies_dir, check_paths=False, state_dir=state_dir)
    try:
        global_settings = load_global_settings(policies_dir)
    except PolicyError:  # already among `problems`
        global_settings = GlobalSettings()
    chosen = select_policies(policies, names)
    restic = shutil.which("restic")
    checks = [policies_check(policies, problems), restic_check(restic, policies), state_check(state_dir),
              systemd_check(unit_dir)]
    for policy in chosen:
        checks += dataset_checks(policy, state_dir, global_settings, restic)
    failed = any(item["status"] == FAIL for item in checks)
    return {"checks": checks, "exit_code": EXIT_USAGE if problems else EXIT_FINDINGS if failed else EXIT_OK}


# --- global ---------------------------------------------------------------------------


def policies_check(policies, problems):
    if problems:
        return check(None, "policies", FAIL, "; ".join(problems),
                     "correct the files and fields named (syncer check-policies lists every problem)")
    return check(None, "policies", PASS, f"{len(policies)} valid: {', '.join(p.name for p in policies)}")


def restic_check(binary, policies):
    from syncer.restic.runner import installed_version
    from syncer.restic.versions import FEATURES, has_feature

    if not binary:
        if not any(policy.offsite for policy in policies):
            return check(None, "restic", SKIP, "not found; no dataset has an offsite section")
        return check(None, "restic", FAIL, "the restic binary was not found on PATH",
                     "install it from Debian's package: apt-get install -y restic")
    version = installed_version(binary)
    if version is None:
        return check(None, "restic", FAIL, f"{binary} does not answer `restic version`",
                     "reinstall it: apt-get install --reinstall -y restic")
    features = ", ".join(f"{name} {'yes' if has_feature(version, name) else 'emulated'}" for name in FEATURES)
    return check(None, "restic", PASS, f"restic {'.'.join(map(str, version))} at {binary} ({features})")


def free_space(path):
    """Return (free bytes, total bytes) of the filesystem holding `path`."""
    usage = shutil.disk_usage(path)
    return usage.free, usage.total


def space_text(free, total):
    return f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB ({100 * free / max(total, 1):.0f}%)"


def nearest_existing(path):
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def state_check(state_dir):
    state = Path(state_dir).absolute()
    existing = nearest_existing(state)
    fix = f"make {state} writable by syncer's user, or choose another with --state-dir or SYNCER_STATE_DIR"
    if state.exists():
        try:
            with tempfile.TemporaryFile(dir=state):
                pass
        except OSError as error:
            return check(None, "state directory", FAIL, f"{state} is not writable ({error.strerror})", fix)
        where = str(state)
    elif os.access(existing, os.W_OK):
        where = f"{state} (created on the first run, in {existing})"
    else:
        return check(None, "state directory", FAIL, f"{state} does not exist and {existing} is not writable", fix)
    free, total = free_space(existing)
    if free < LOW_FREE_SHARE * total:
        return check(None, "state directory", WARN, f"{where}: {space_text(free, total)}",
                     f"free space on the filesystem of {existing}: the index and restic's cache grow there")
    return check(None, "state directory", PASS, f"{where}: {space_text(free, total)}")


def systemd_check(unit_dir):
    from syncer.schedule.systemd import systemd_running, unit_state
    from syncer.schedule.units import UNIT_NAMES

    if not systemd_running():
        return check(None, "systemd units", SKIP, "systemd is not running on this machine")
    states = {name: unit_state(name, unit_dir) for name in UNIT_NAMES}
    if not any(state["installed"] for state in states.values()):
        return check(None, "systemd units", WARN, f"no syncer unit in {unit_dir}",
                     "run `syncer systemd install`, then enable the timers or the daemon as it says")
    timers = [name for name in ("syncer.timer", "syncer-verify.timer") if states[name]["enabled"] == "enabled"]
    daemon = states["syncer-daemon.service"]["enabled"] == "enabled"
    if timers and daemon:
        return check(None, "systemd units", WARN, "both the timers and the daemon are enabled",
                     "keep one mode: systemctl disable --now syncer-daemon.service (or the timers)")
    if daemon:
        return check(None, "systemd units", PASS, "mode daemon: syncer-daemon.service enabled")
    if timers:
        runs = ", ".join(f"{name} next {states[name]['next_run'] or 'unknown'}" for name in timers)
        return check(None, "systemd units", PASS, f"mode timers: {runs}")
    return check(None, "systemd units", WARN, "units installed, none enabled",
                 "systemctl enable --now syncer.timer syncer-verify.timer (or syncer-daemon.service)")


# --- per dataset ----------------------------------------------------------------------


def dataset_checks(policy, state_dir, global_settings, restic):
    """Return the checks of one dataset; a fault here fails only its own checks."""
    checks = [path_check(policy)]
    usable = {}
    for label, path, keys in credential_files(policy):
        item = credentials_check(policy, label, path, keys)
        usable[label] = item["status"] != FAIL
        checks.append(item)
    checks.append(authority_check(policy, usable.get("authority.credentials", True)))
    checks += clock_checks(policy)
    checks.append(offsite_check(policy, state_dir, all(usable.get(label, True) for label in
                                                       ("offsite.password_file", "offsite.env_file")), restic))
    if policy.watch:
        checks.append(inotify_check(policy))
    checks.append(notify_check(policy, global_settings))
    return checks


def filesystem_of(path):
    """Return the type of the filesystem mounted at the longest prefix of `path`."""
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1].replace("\\040", " ")
                if len(fields) > 2 and (str(path) == point or str(path).startswith(point.rstrip("/") + "/")) \
                        and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def path_check(policy):
    path = policy.path
    if not path.exists():
        return check(policy.name, "path", FAIL, f"dataset path {path} does not exist",
                     f"create it (mkdir -p {path}) or mount the disk that holds it")
    if not path.is_dir():
        return check(policy.name, "path", FAIL, f"dataset path {path} is not a directory",
                     f"point `path` in {policy.file_label} at the dataset's folder")
    if not os.access(path, os.R_OK | os.X_OK):
        return check(policy.name, "path", FAIL, f"dataset path {path} cannot be read by this user",
                     f"run syncer as a user that can read {path} (the units run as root)")
    free, total = free_space(path)
    detail = f"{path}: {filesystem_of(path.resolve())}, {space_text(free, total)}"
    if free < LOW_FREE_SHARE * total:
        return check(policy.name, "path", WARN, detail,
                     "free space on that filesystem: a pull or restore needs room for new files")
    return check(policy.name, "path", PASS, detail)


def credential_files(policy):
    """Return (label, path, required keys) of each credentials file the policy names."""
    files = []
    if policy.authority.credentials:
        files.append(("authority.credentials", policy.authority.credentials, policy.authority.credential_keys))
    if policy.offsite:
        files.append(("offsite.password_file", policy.offsite.password_file, None))
        if policy.offsite.env_file:
            files.append(("offsite.env_file", policy.offsite.env_file, ()))
    return files


def auth_hint(policy):
    """How the user gets working credentials for the authority."""
    if policy.authority.credential_keys:
        return f"run `syncer auth {policy.authority.type} {policy.name}`"
    return "check the authority's settings"


def credentials_check(policy, label, path, keys):
    name = f"credentials {label}"
    source = "from $CREDENTIALS_DIRECTORY" if os.environ.get("CREDENTIALS_DIRECTORY") and \
        Path(path).parent == Path(os.environ["CREDENTIALS_DIRECTORY"]) else "mode 600"
    problem = check_credentials_file(Path(path))
    if problem and label.startswith("offsite"):  # a password and an environment, not credentials files
        problem = problem.replace("credentials file", "file")
    if problem and not Path(path).exists():
        fix = f"create {path} with mode 600" + (f" holding {', '.join(keys)}, or {auth_hint(policy)}" if keys else
                                                 " holding the repository's password" if keys is None else "")
        return check(policy.name, name, FAIL, problem, fix)
    if problem:
        return check(policy.name, name, FAIL, problem, f"chmod 600 {path} (only its owner may read it)")
    if keys is not None:
        try:
            read_credentials(Path(path), keys)
        except SyncerError as error:
            return check(policy.name, name, FAIL, str(error), f"add the missing keys, or {auth_hint(policy)}")
    return check(policy.name, name, PASS, f"{path} ({source})")


def authority_check(policy, credentials_usable):
    from syncer.endpoints.factory import build_endpoint

    if not credentials_usable:
        return check(policy.name, "authority", SKIP, "its credentials file is unusable (above)")
    started = time.monotonic()
    try:
        endpoint = build_endpoint(policy, retry=QUICK_RETRY)
        detail = endpoint.check_access()
    except AuthenticationError as error:
        return check(policy.name, "authority", FAIL, str(error),
                     f"the {policy.authority.type} service refused the credentials: {auth_hint(policy)}")
    except SyncerError as error:
        return check(policy.name, "authority", FAIL, str(error),
                     f"check that the authority is reachable from this machine (network, mount) and its "
                     f"address in {policy.file_label}")
    milliseconds = (time.monotonic() - started) * 1000
    return check(policy.name, "authority", PASS, f"{endpoint.describe()}: {detail} ({milliseconds:.0f} ms)")


def s3_addresses(policy):
    """Return the S3 servers the dataset signs requests for: an s3 authority and an s3:
    repository."""
    from syncer.restic.argv import parse_s3_repository

    addresses = []
    if policy.authority.type == "s3":
        addresses.append(policy.authority.endpoint_url or
                         f"https://s3.{policy.authority.region or 'us-east-1'}.amazonaws.com")
    parsed = policy.offsite and parse_s3_repository(policy.offsite.repository)
    if parsed:
        addresses.append(parsed[0])
    return list(dict.fromkeys(addresses))


def clock_checks(policy):
    from syncer.endpoints.http import server_clock_offset

    checks = []
    fix = "set the clock: enable NTP (timedatectl set-ntp true, or install systemd-timesyncd or chrony)"
    for address in s3_addresses(policy):
        try:
            offset = server_clock_offset(address, address)
        except SyncerError as error:
            checks.append(check(policy.name, "clock", WARN, f"the clock of {address} could not be read: {error}",
                                f"check that {address} is reachable from this machine"))
            continue
        detail = f"{abs(offset):.0f} s {'behind' if offset > 0 else 'ahead of'} {address}"
        status = FAIL if abs(offset) > SKEW_FAIL_SECONDS else WARN if abs(offset) > SKEW_WARN_SECONDS else PASS
        if status == FAIL:
            detail += " (S3 refuses signed requests past 15 minutes)"
        checks.append(check(policy.name, "clock", status, detail, fix if status != PASS else None))
    return checks


def snapshot_age_seconds(snapshot):
    """Seconds since restic's `time` of a snapshot (nanoseconds and any offset allowed)."""
    # Python reads at most microseconds: restic writes nanoseconds.
    text = re.sub(r"\.(\d{1,6})\d*", r".\1", snapshot.get("time", ""))
    taken = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (datetime.now(UTC) - taken).total_seconds()


def offsite_check(policy, state_dir, files_usable, restic):
    from syncer.actions.offsite import open_repository
    from syncer.restic.argv import dataset_tag
    from syncer.restic.runner import RepositoryMissing, RepositoryUnreachable, WrongPassword

    name = "offsite repository"
    if not policy.offsite:
        return check(policy.name, name, SKIP, "no offsite section")
    if not files_usable:
        return check(policy.name, name, SKIP, "its password or env file is unusable (above)")
    if not restic:
        return check(policy.name, name, SKIP, "restic is not installed (above)")
    offsite = policy.offsite
    try:
        repository = open_repository(policy, state_dir)
        snapshots = repository.snapshots(dataset_tag(policy.name), policy.restic_host, no_lock=True)
    except WrongPassword as error:
        return check(policy.name, name, FAIL, str(error),
                     f"put the repository's password on the first line of {offsite.password_file}")
    except RepositoryMissing as error:
        if offsite.exists:
            return check(policy.name, name, FAIL, str(error),
                         f"check offsite.repository in {policy.file_label} (exists: true says it is there already)")
        return check(policy.name, name, WARN, f"{offsite.repository} does not exist yet",
                     f"run `syncer push {policy.name}`: the first push creates it")
    except RepositoryUnreachable as error:
        return check(policy.name, name, FAIL, str(error),
                     "check the network and the server of offsite.repository (and offsite.env_file's keys)")
    except SyncerError as error:
        return check(policy.name, name, FAIL, str(error),
                     f"run `restic snapshots` with the policy's repository and password to see why; "
                     f"check offsite.* in {policy.file_label}")
    if not snapshots:
        return check(policy.name, name, WARN, f"{repository.context.display} opens; no snapshot of {policy.name} yet",
                     f"run `syncer push {policy.name}`")
    age = snapshot_age_seconds(snapshots[-1])
    detail = f"{repository.context.display} opens; newest snapshot {age / 3600:.1f} h old ({len(snapshots)} in all)"
    if age > STALE_SNAPSHOT_DAYS * 86400:
        return check(policy.name, name, WARN, detail,
                     f"no push for over {STALE_SNAPSHOT_DAYS} days: check the timers, or run "
                     f"`syncer push {policy.name}`")
    return check(policy.name, name, PASS, detail)


def count_directories(root):
    return sum(1 for _ in os.walk(root))


def inotify_check(policy):
    from syncer.schedule.watch import max_user_watches

    name = "inotify watches"
    if not policy.path.is_dir():
        return check(policy.name, name, SKIP, "the dataset path is missing (above)")
    limit = max_user_watches()
    directories = count_directories(policy.path)
    if limit is None:
        return check(policy.name, name, WARN, f"{directories} directories to watch; the kernel's limit is unreadable",
                     "check fs.inotify.max_user_watches with sysctl")
    detail = f"{directories} directories to watch, fs.inotify.max_user_watches is {limit}"
    fix = (f"raise the limit: echo fs.inotify.max_user_watches={max(2 * directories, 65536)} "
           f"> /etc/sysctl.d/90-syncer.conf && sysctl --system")
    if directories > limit:
        return check(policy.name, name, FAIL, detail + ": the daemon would fall back to scheduled scans", fix)
    if directories > 0.8 * limit:
        return check(policy.name, name, WARN, detail + ": little room to grow", fix)
    return check(policy.name, name, PASS, detail)


def notify_check(policy, global_settings):
    notify = notify_settings(policy, global_settings)
    configured = [key for key in ("healthchecks", "ntfy", "webhook") if getattr(notify, key)]
    if not configured:
        return check(policy.name, "notify", WARN, "no notification URL: a failed night run is seen only in the logs",
                     f"add notify.healthchecks, notify.ntfy or notify.webhook to {policy.file_label} or syncer.yaml")
    return check(policy.name, "notify", PASS, f"{', '.join(configured)} configured (events: {notify.events}; "
                                              "doctor never pings them)")
