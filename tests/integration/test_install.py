"""`make install` into a scratch root, as the board would get it: the installed syncer
runs, doctor passes on a small policy, a second install changes nothing and keeps the
user's files, and `make uninstall` removes what install created and nothing else."""

import os
import shutil
import stat
import subprocess

import pytest

from tests.support import REPO, write_policy, write_tree

# Read before the tests' HOME is replaced: the install reuses the machine's pip cache.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or os.path.expanduser("~/.cache/pip")


def make(target, root):
    variables = [f"PREFIX={root}/opt/syncer", f"BINDIR={root}/bin", f"SYSCONFDIR={root}/etc/syncer",
                 f"BASHCOMPDIR={root}/bash-completion", f"ZSHCOMPDIR={root}/zsh", f"FISHCOMPDIR={root}/no-fish"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SYNCER_")}
    environment.update(PIP_CACHE_DIR=PIP_CACHE, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_INSTALL_OPTIONS="--no-compile")
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), target, *variables],
                          capture_output=True, text=True, env=environment, timeout=600)


def snapshot(root):
    """Every file and folder below `root` with its mode, size and modification time."""
    found = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            info = os.lstat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (info.st_mode, info.st_size,
                                                                          info.st_mtime_ns)
    return found


@pytest.mark.slow
def test_install_runs_changes_nothing_the_second_time_and_uninstalls(tmp_path):
    if not shutil.which("make"):
        raise AssertionError("this test needs `make` on PATH")
    root = tmp_path / "root"
    (root / "zsh").mkdir(parents=True)  # zsh is "installed"; fish is not
    first = make("install", root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "nothing is enabled" in first.stdout and "syncer doctor" in first.stdout
    assert "syncer auth" in first.stdout and "syncer systemd install" in first.stdout
    installed = root / "bin" / "syncer"
    version = subprocess.run([installed, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "syncer, version" in version.stdout
    assert stat.S_IMODE((root / "etc/syncer/credentials").stat().st_mode) == 0o700
    assert "_SYNCER_COMPLETE" in (root / "bash-completion" / "syncer").read_text()
    assert (root / "zsh" / "_syncer").is_file() and not (root / "no-fish").exists()

    # The user's own files: a policy of a small dataset, which doctor passes.
    data = write_tree(tmp_path / "data", {"a.txt": "a"})
    mirror = write_tree(tmp_path / "mirror", {"a.txt": "a"})
    policy = write_policy(root / "etc/syncer/policies", "small", {
        "path": str(data), "authority": {"type": "local", "path": str(mirror)},
        "notify": {"healthchecks": "http://127.0.0.1:9/never-pinged"}})
    doctor = subprocess.run([installed, "--policies", root / "etc/syncer/policies", "--state-dir", tmp_path / "state",
                             "doctor"], capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "pass  small  authority: local:" in doctor.stdout
    assert not [line for line in doctor.stdout.splitlines() if line.startswith("fail")]

    # The units run the installed syncer, not a checkout.
    units = subprocess.run([installed, "--policies", root / "etc/syncer/policies", "--state-dir", tmp_path / "state",
                            "systemd", "install", "--dry-run"], capture_output=True, text=True)
    assert units.returncode == 0 and f"ExecStart={root}/opt/syncer/bin/syncer " in units.stdout, units.stdout

    before = snapshot(root)
    second = make("install", root)
    assert second.returncode == 0, second.stdout + second.stderr
    said = [line for line in second.stdout.splitlines() if line.startswith("install: ") and "nothing is enabled"
            not in line]
    assert said == [] and snapshot(root) == before

    removed = make("uninstall", root)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not (root / "opt/syncer").exists() and not os.path.lexists(installed)
    assert not (root / "bash-completion" / "syncer").exists() and not (root / "zsh" / "_syncer").exists()
    assert policy.read_text() and (root / "etc/syncer/credentials").is_dir()
