"""The shipped and the rendered systemd units pass `systemd-analyze verify` without a
single warning, and every OnCalendar= is a valid calendar expression."""

import subprocess
from pathlib import Path

import pytest

from syncer.schedule.units import UNIT_NAMES, on_calendars, render_units
from tests.support import REPO, require_tool, run_syncer, write_policy, write_secret

SHIPPED = REPO / "systemd"


def analyze(*arguments, cwd=None):
    tool = require_tool("systemd-analyze")
    return subprocess.run([tool, *arguments], capture_output=True, text=True, timeout=60, cwd=cwd)


def assert_verifies(unit):
    done = analyze("verify", "--man=no", str(unit), cwd=unit.parent)
    assert done.returncode == 0 and done.stderr == "", f"{unit.name}:\n{done.stderr}"


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_every_shipped_unit_verifies_without_warnings(name):
    assert_verifies(SHIPPED / name)


def test_the_shipped_units_are_the_generic_rendering():
    assert sorted(path.name for path in SHIPPED.iterdir()) == sorted(UNIT_NAMES)
    for name, text in render_units().items():
        assert (SHIPPED / name).read_text() == text, f"systemd/{name} is out of date: re-render it"


def test_a_unit_with_an_unknown_key_fails_the_check(tmp_path):
    unit = tmp_path / "syncer.service"
    unit.write_text(render_units()["syncer.service"] + "ProtectSytem=strict\n")
    done = analyze("verify", "--man=no", str(unit), cwd=tmp_path)
    assert "Unknown key" in done.stderr  # so an empty stderr above means something


def test_every_on_calendar_is_valid():
    calendars = [value for name in UNIT_NAMES for value in on_calendars((SHIPPED / name).read_text())]
    assert len(calendars) == 2
    for value in calendars:
        done = analyze("calendar", value)
        assert done.returncode == 0, done.stderr
        assert "Next elapse" in done.stdout
    assert analyze("calendar", "*-*-* 25:00:00").returncode != 0


@pytest.fixture
def machine(tmp_path):
    policies = tmp_path / "etc policies"
    (tmp_path / "my data").mkdir()
    (tmp_path / "auth").mkdir()
    write_secret(policies / "restic.pass", "correct horse battery staple\n")
    write_policy(policies, "photos", {
        "path": str(tmp_path / "my data"), "authority": {"type": "local", "path": str(tmp_path / "auth")},
        "offsite": {"repository": str(tmp_path / "repo"), "password_file": "restic.pass"},
        "schedule": {"pull": "0 2 * * *", "verify": "0 * * * *"}})
    (policies / "syncer.yaml").write_text(f"metrics:\n  textfile: {tmp_path / 'prom' / 'syncer.prom'}\n"
                                          f"report:\n  html: {tmp_path / 'www' / 'status.html'}\n")
    return tmp_path, policies


def test_install_dry_run_renders_this_machines_paths(machine):
    tmp_path, policies = machine
    result = run_syncer("systemd", "install", "--dry-run", policies=policies, state=tmp_path / "state")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "# /etc/systemd/system/syncer-daemon.service" in out
    executable = Path(__import__("sys").executable).parent / "syncer"
    assert f"ExecStart={executable} --policies \"{policies}\" --state-dir {tmp_path / 'state'} daemon" in out
    assert f"\"-{tmp_path / 'my data'}\"" in out  # pull writes the local copy: writable, quoted
    assert f"-{tmp_path / 'prom'}" in out and f"-{tmp_path / 'www'}" in out  # the textfile's, the page's folder
    assert f"LoadCredential=restic.pass:{policies}/restic.pass" in out
    assert "correct horse" not in out
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").iterdir())


def test_installed_units_verify_without_warnings(machine):
    tmp_path, policies = machine
    target = tmp_path / "system"
    result = run_syncer("systemd", "install", "--target", target, policies=policies, state=tmp_path / "state")
    assert result.exit_code == 0, result.stderr
    assert "systemctl enable --now syncer.timer syncer-verify.timer" in result.stdout
    assert sorted(path.name for path in target.iterdir()) == sorted(UNIT_NAMES)
    for name in UNIT_NAMES:
        assert (target / name).stat().st_mode & 0o777 == 0o644
        assert_verifies(target / name)
    verify_unit = (target / "syncer-verify.service").read_text()
    [writable] = [line for line in verify_unit.splitlines() if line.startswith("ReadWritePaths=")]
    # verify writes its state, the metrics textfile, the status page and the local
    # repository's locks (its offsite comparison runs restic), never a dataset
    assert writable == (f"ReadWritePaths=-{tmp_path / 'state'} -{tmp_path / 'prom'} -{tmp_path / 'www'} "
                        f"-{tmp_path / 'repo'}")


def test_install_into_an_unwritable_place_exits_3(machine, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_syncer("systemd", "install", "--target", blocker / "sub", policies=machine[1],
                        state=tmp_path / "state")
    assert result.exit_code == 3
    assert "cannot write the units" in result.stderr and "Traceback" not in result.stderr


def test_a_dataset_under_home_keeps_home_readable_for_every_service(tmp_path):
    from syncer.schedule.units import UnitPaths

    units = render_units(UnitPaths(dataset_paths=("/home/anna/photos",)))
    for name in ("syncer.service", "syncer-verify.service", "syncer-daemon.service"):
        assert "ProtectHome=read-only" in units[name], name
    assert "-/home/anna/photos" not in units["syncer-verify.service"]
    assert "ProtectHome=yes" in render_units()["syncer-verify.service"]


def writable_paths(unit_text):
    [line] = [line for line in unit_text.splitlines() if line.startswith("ReadWritePaths=")]
    return {path.removeprefix("-") for path in line.removeprefix("ReadWritePaths=").split()}


def test_the_units_may_write_every_local_repository_the_policies_name(tmp_path):
    """Under ProtectSystem=strict a push to a USB or local repository fails unless the
    repository is in ReadWritePaths=; and a path under /tmp is invisible beside
    PrivateTmp=yes, which install says."""
    policies = tmp_path / "policies"
    secret = {"password_file": "/etc/syncer/restic.pass"}
    for name, repository, extra in (("photos", "/media/usb/restic", {"schedule": {"pull": "0 2 * * *"}}),
                                    ("music", "local:/srv/restic-music", {}),
                                    ("site", "sftp:backup@host:/srv/restic-site", {}),
                                    ("scratch", "/var/tmp/scratch-repo", {})):
        path = "/tmp/scratch" if name == "scratch" else f"/srv/{name}"
        offsite = {"repository": repository, **secret}
        if name == "scratch":
            offsite["manifest_root"] = "/tmp/scratch-manifests"
        write_policy(policies, name, {"path": path, "authority": {"type": "local", "path": f"/mnt/nas/{name}"},
                                      "offsite": offsite, **extra})
    target = tmp_path / "system"
    result = run_syncer("systemd", "install", "--target", target, policies=policies, state="/var/lib/syncer")
    assert result.exit_code == 0, result.stderr
    repositories = {"/media/usb/restic", "/srv/restic-music", "/var/tmp/scratch-repo"}  # never sftp:'s
    state = {"/var/lib/syncer"}
    datasets = {"/srv/photos", "/srv/music", "/srv/site", "/tmp/scratch"}
    manifests = {"/var/lib/syncer-offsite", "/tmp/scratch-manifests"}  # where push writes them
    units = {name: (target / name).read_text() for name in UNIT_NAMES}
    assert writable_paths(units["syncer.service"]) == state | repositories | manifests | datasets
    assert writable_paths(units["syncer-verify.service"]) == state | repositories
    assert writable_paths(units["syncer-daemon.service"]) == state | repositories | manifests | {"/srv/photos"}
    for name in ("syncer.service", "syncer-verify.service", "syncer-daemon.service"):
        assert_verifies(target / name)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert any("scratch.yaml: path: /tmp/scratch is under /tmp" in line and "PrivateTmp=yes" in line
               for line in warnings), result.stderr
    assert any("scratch.yaml: offsite.repository: /var/tmp/scratch-repo is under /var/tmp" in line
               for line in warnings), result.stderr
    assert any("scratch.yaml: offsite.manifest_root: /tmp/scratch-manifests is under /tmp" in line
               for line in warnings), result.stderr
    assert any(f"--policies: {policies} is under /tmp" in line for line in warnings), result.stderr
    assert not any("photos.yaml" in line or "music.yaml" in line for line in warnings), result.stderr
