"""The systemd units: syncer.service/.timer (the daily run), syncer-verify.service/.timer
(hourly verify) and syncer-daemon.service (the always-on mode), hardened.

render_units() is the one source of their text: the files shipped in systemd/ are its
output with the generic paths (a test keeps them identical), and `syncer systemd
install` renders them with this machine's executable, policies and state dirs.
"""

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

GENERIC_EXECUTABLE = ("/usr/bin/env", "syncer")  # found on systemd's default PATH
GENERIC_POLICIES = Path("/etc/syncer/policies")
GENERIC_STATE = Path("/var/lib/syncer")
RUN_CALENDAR = "*-*-* 03:30:00"
VERIFY_CALENDAR = "*-*-* *:15:00"
UNIT_NAMES = ("syncer.service", "syncer.timer", "syncer-verify.service", "syncer-verify.timer",
              "syncer-daemon.service")
HOME_PREFIXES = ("/home", "/root", "/run/user")
PRIVATE_TMP = ("/tmp", "/var/tmp")  # PrivateTmp=yes gives each service its own, empty ones

# As borgmatic hardens its units: read-only system, private /tmp and devices, no new
# privileges, kernel and namespaces off limits; writable only where syncer must write.
# Temporary files (a drill's restore, a listing's spool, restic's packs) go to the
# service's private /var/tmp, on disk: /tmp is a tmpfs on Debian 13, in the board's RAM.
HARDENING = """\
NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ProtectHome={protect_home}
ReadWritePaths={read_write}
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_CHOWN
UMask=0077
Nice=10
CPUSchedulingPolicy=batch
IOSchedulingClass=idle
Environment=XDG_CACHE_HOME={state}/cache
Environment=TMPDIR=/var/tmp
{credentials}"""


@dataclass
class UnitPaths:
    """What a rendering needs to know about the machine."""

    executable: tuple = GENERIC_EXECUTABLE
    policies_dir: Path = GENERIC_POLICIES
    state_dir: Path = GENERIC_STATE
    dataset_paths: tuple = ()  # the local copies that pull writes
    pulled_by_daemon: tuple = ()  # those whose schedule has pull
    extra_writable: tuple = ()  # e.g. the metrics textfile's directory
    manifest_roots: tuple = ()  # where push writes the manifests (default: SYSTEM_MANIFEST_ROOT)
    repositories: tuple = ()  # local restic repositories: push writes them, every restic command locks them
    credentials: dict = field(default_factory=dict)  # LoadCredential name -> file


def quote(argument):
    """Quote one ExecStart argument for systemd ('%' is a specifier there)."""
    argument = str(argument).replace("%", "%%")
    if re.search(r'[\s"\'\\;$]', argument):
        return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return argument


def path_list(paths):
    """A ReadWritePaths= value: '-' makes a path that does not exist (yet) no error."""
    unique = []
    for path in paths:
        text = str(path).replace("%", "%%")
        if text not in unique:
            unique.append(text)
    return " ".join(f'"-{p}"' if re.search(r"\s", p) else f"-{p}" for p in unique)


def exec_start(paths, *arguments):
    command = [*paths.executable, "--policies", paths.policies_dir, "--state-dir", paths.state_dir, *arguments]
    return " ".join(quote(argument) for argument in command)


def hardening(paths, writable):
    # Every service reads the datasets (verify, push): a home directory holding one, or
    # the state, must stay visible.
    visible = [*writable, *paths.dataset_paths, paths.policies_dir]
    protect_home = "read-only" if any(str(p).startswith(HOME_PREFIXES) for p in visible) else "yes"
    credentials = "".join(f"LoadCredential={name}:{path}\n" for name, path in sorted(paths.credentials.items()))
    return HARDENING.format(protect_home=protect_home, read_write=path_list(writable), state=paths.state_dir,
                            credentials=credentials)


def oneshot_service(description, exec_line, hardening_text):
    """A oneshot service that the daemon's unit excludes (one mode or the other)."""
    return f"""\
[Unit]
Description=syncer: {description}
Wants=network-online.target
After=network-online.target
Conflicts=syncer-daemon.service

[Service]
Type=oneshot
ExecStart={exec_line}
{hardening_text}"""


def timer(description, calendar, randomized_delay):
    """A persistent timer: a run missed while the board was off happens at boot."""
    return f"""\
[Unit]
Description=syncer: {description}

[Timer]
OnCalendar={calendar}
RandomizedDelaySec={randomized_delay}
Persistent=true

[Install]
WantedBy=timers.target
"""


def render_units(paths=None, run_calendar=RUN_CALENDAR, verify_calendar=VERIFY_CALENDAR):
    """Return {unit file name: text} for `paths` (the generic ones by default)."""
    paths = paths or UnitPaths()
    from syncer.actions.offsite import SYSTEM_MANIFEST_ROOT

    state = [paths.state_dir, *paths.extra_writable, *paths.repositories]
    manifests = list(paths.manifest_roots or (SYSTEM_MANIFEST_ROOT,))  # the run and the daemon push
    run_writable = state + manifests + list(paths.dataset_paths)
    daemon_writable = state + manifests + list(paths.pulled_by_daemon)
    return {
        "syncer.service": oneshot_service("pull, verify and push every dataset (the scheduled run)",
                                          exec_start(paths, "job", "run"), hardening(paths, run_writable)),
        "syncer.timer": timer("the daily run", run_calendar, "30min"),
        "syncer-verify.service": oneshot_service("verify every dataset against its authoritative copy",
                                                 exec_start(paths, "job", "verify"), hardening(paths, state)),
        "syncer-verify.timer": timer("the hourly verify", verify_calendar, "5min"),
        "syncer-daemon.service": f"""\
[Unit]
Description=syncer: the always-on daemon (schedules from the policies, change watching)
Wants=network-online.target
After=network-online.target
Conflicts=syncer.timer syncer-verify.timer

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start(paths, "daemon")}
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=120s
Restart=on-failure
RestartSec=30s
TimeoutStopSec=90s
KillMode=mixed
{hardening(paths, daemon_writable)}
[Install]
WantedBy=multi-user.target
""",
    }


def installed_executable():
    """Return the argv that starts this installation of syncer: the `syncer` script
    beside this Python when there is one, else this Python with -m syncer."""
    script = Path(sys.executable).parent / "syncer"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (sys.executable, "-m", "syncer")


def machine_paths(policies, policies_dir, state_dir, global_settings):
    """Return the UnitPaths of this machine for `policies`."""
    from syncer.actions.offsite import SYSTEM_MANIFEST_ROOT  # the services run as root

    credentials = {}
    for policy in policies:
        for name in policy.credential_names:
            # Outside systemd a relative name is read beside the policy file: load that file.
            credentials[name] = str(policy.source.parent.resolve() / name)
    extra = ()
    if global_settings.metrics_textfile:
        extra = (global_settings.metrics_textfile.parent,)
    if global_settings.report.html:
        extra += (global_settings.report.html.parent,)
    return UnitPaths(
        executable=installed_executable(), policies_dir=Path(policies_dir).resolve(),
        state_dir=Path(state_dir).resolve(), dataset_paths=tuple(str(p.path) for p in policies),
        pulled_by_daemon=tuple(str(p.path) for p in policies if "pull" in p.schedule),
        extra_writable=extra, credentials=credentials,
        manifest_roots=tuple(str(p.offsite.manifest_root or SYSTEM_MANIFEST_ROOT) for p in policies if p.offsite),
        repositories=tuple(path for p in policies if (path := local_repository(p))))


def local_repository(policy):
    """Return the folder of `policy`'s restic repository when it is on this machine (a
    path, or local:PATH), else None (s3:, sftp:, rest:, ... are reached over the network)."""
    repository = policy.offsite and policy.offsite.repository
    if repository and repository.startswith(("/", "local:")):
        return repository.removeprefix("local:")
    return None


def hidden_by_private_tmp(policies, paths):
    """Return a warning for each path the services need that lies under /tmp or
    /var/tmp: with PrivateTmp=yes a service sees its own empty ones instead. (Files
    given to LoadCredential= are read by systemd outside the sandbox.)"""
    needed = [("--state-dir", paths.state_dir), ("--policies", paths.policies_dir)]
    needed += [("the metrics textfile's or status page's folder", path) for path in paths.extra_writable]
    for policy in policies:
        needed += [(f"{policy.file_label}: path", policy.path), (f"{policy.file_label}: offsite.repository",
                                                                  local_repository(policy))]
        if policy.authority.type == "local":
            needed.append((f"{policy.file_label}: authority.path", policy.authority.path))
        if policy.offsite and policy.offsite.manifest_root:
            needed.append((f"{policy.file_label}: offsite.manifest_root", policy.offsite.manifest_root))
    return [f"{label}: {path} is under {top}, which the units replace with an empty private one "
            f"(PrivateTmp=yes): the services would not see it; move it out of {top}"
            for label, path in needed if path
            for top in PRIVATE_TMP if str(path) == top or str(path).startswith(top + "/")]


def on_calendars(text):
    """Return the OnCalendar= values of a unit's text."""
    return [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith("OnCalendar=")]
