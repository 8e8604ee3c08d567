"""Power cuts: kill -9 of the whole process group (syncer and its restic and git
children) at seeded random moments, many times per action. After every kill:

- the killed run never claims success (it has no exit code of its own, and a report
  it managed to print before the kill is the true one);
- no file under its real name is partial or wrong: each holds its old content or
  its new verified content;
- the state database passes PRAGMA integrity_check;
- the next ordinary run succeeds without manual steps, and where a repository
  exists `restic check` passes (so no stale lock blocks it);
- nothing is lost: the figures count the bytes that are not where they should be.

A failure names its seed and iteration: SYNCER_FAULTS_SEED=<seed> replays it.
"""

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.support import (
    SEED,
    assert_killed_run_claims_nothing,
    bytes_lost,
    integrity_check,
    kill_at,
    mirror_refs,
    record,
    run,
    spawn_syncer,
    tree_digests,
)
from tests.support import RESTIC, require_tool, write_policy, write_secret

PASSWORD = "fault-suite-password-7c1d"
QUICK, FULL = 1, 12  # kills per action in the quick slice and in `make faults`


def make_files(chooser, count=60):
    """A few MiB of files of mixed sizes, some in nested folders, one non-ASCII name."""
    files = {}
    for number in range(count):
        size = chooser.choice((700, 5_000, 40_000, 150_000))
        folder = ("", "a/", "a/b/", "ç/")[number % 4]
        files[f"{folder}file-{number:03d}.bin"] = chooser.randbytes(size)
    return files


def write_files(root, files):
    for relative, data in files.items():
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def digest_set(*trees):
    """{path: {sha256, ...}}: every content a name may legitimately hold."""
    known = {}
    for tree in trees:
        for path, (_, digest) in tree.items():
            known.setdefault(path, set()).add(digest)
    return known


def assert_no_partial_files(root, known, staging_prefixes=(".syncer-",)):
    """Every file under its real name holds one of its known contents; anything else
    must be a staging file of the product (a dot-name it cleans up itself)."""
    for path, (_, digest) in tree_digests(root).items():
        name = path.rsplit("/", 1)[-1]
        if path not in known:
            assert name.startswith(staging_prefixes), f"unexpected file {path} after the kill"
            continue
        assert digest in known[path], f"{path} is partial or wrong after the kill"


class World:
    """One dataset with a local authority and a local restic repository."""

    def __init__(self, root, seed):
        self.root = Path(root)
        self.chooser = random.Random(seed)
        self.data = self.root / "data"
        self.authority = self.root / "authority"
        self.policies = self.root / "policies"
        self.state = self.root / "state"
        self.repository = self.root / "repo"
        self.password = write_secret(self.root / "secrets" / "restic.pass", PASSWORD + "\n")
        self.files = make_files(self.chooser)
        write_files(self.data, self.files)
        write_files(self.authority, self.files)
        write_policy(self.policies, "ds", {
            "path": str(self.data), "authority": {"type": "local", "path": str(self.authority)},
            "offsite": {"repository": str(self.repository), "password_file": str(self.password),
                        "manifest_root": str(self.repository.parent / "manifest-root")}})

    def syncer(self, *arguments):
        return run(*arguments, policies=self.policies, state=self.state)

    def spawn(self, *arguments):
        return spawn_syncer(*arguments, policies=self.policies, state=self.state)

    def restic(self, *arguments):
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_"))}
        environment.update(RESTIC_REPOSITORY=str(self.repository), RESTIC_PASSWORD_FILE=str(self.password),
                           RESTIC_CACHE_DIR=str(self.root / "restic-cache"))
        return subprocess.run([require_tool("restic"), *arguments], capture_output=True, text=True,
                              env=environment, timeout=120)

    def assert_restic_check(self):
        """After the next ordinary run, a plain `restic check` passes at once: it takes
        the exclusive lock, so it fails on any stale lock a killed restic left behind
        (the next run must have cleared it, never worked around it). Then the
        ordinary `syncer check` succeeds too."""
        checked = self.restic("check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        synced = self.syncer("check", "ds")
        assert synced.exit_code == 0, f"syncer check after the fault: {synced.output}"
        return checked

    def restored_snapshot(self, target):
        """Restore the latest snapshot with restic itself; return its dataset tree."""
        shutil.rmtree(target, ignore_errors=True)
        done = self.restic("restore", "latest", "--target", str(target))
        assert done.returncode == 0, done.stderr
        return tree_digests(Path(target) / str(self.data).lstrip("/"))

    def change_some_files(self, tree_root, count=4):
        """Give `count` files new content and add one new file; return their paths."""
        changed = self.chooser.sample(sorted(self.files), count)
        new = {path: self.chooser.randbytes(len(self.files[path]) or 1) for path in changed}
        new[f"new/added-{self.chooser.randrange(10**9)}.bin"] = self.chooser.randbytes(30_000)
        write_files(tree_root, new)
        return new


def kill_moments(seed, count, window):
    chooser = random.Random(seed)
    return [chooser.uniform(0.05, window) for _ in range(count)]


def measured(world, *arguments):
    """Run once and return (Result, seconds)."""
    import time

    started = time.monotonic()
    result = world.syncer(*arguments)
    return result, time.monotonic() - started


def killed(result):
    return result.exit_code == -signal.SIGKILL


# --- verify ------------------------------------------------------------------------------


def crash_verify(tmp_path, kills, seed):
    world = World(tmp_path, seed)
    (world.data / "file-000.bin").unlink()  # planted: missing_local
    (world.data / "only-here.txt").write_text("extra")  # planted: extra_local
    expected_tree = tree_digests(world.data)
    truth, seconds = measured(world, "verify", "--json", "--deep")
    assert truth.exit_code == 1, truth.output
    true_report = truth.json()
    recovered = lost = 0
    for number, moment in enumerate(kill_moments(seed, kills, seconds * 1.2)):
        arguments = ("verify", "--json", "--deep") if number % 2 else ("verify", "--json")
        result = kill_at(world.spawn(*arguments), moment)
        context = f"seed {seed}, kill {number} at {moment:.2f}s"
        assert_killed_run_claims_nothing(result, true_report, strip_local)
        assert integrity_check(world.state) == "ok", context
        after = world.syncer("verify", "--json")
        assert after.exit_code == 1, f"{context}: {after.output}"
        assert strip_local(after.json()) == strip_local(true_report), context
        lost += bytes_lost(expected_tree, tree_digests(world.data))
        recovered += 1
        status = world.syncer("status", "--json")
        assert status.exit_code in (0, 1) and "Traceback" not in status.output, status.output
    record("kill -9 during verify", kills, recovered, lost)
    assert lost == 0


def strip_local(report):
    """The parts of a verify report that must not depend on what the cache held."""
    return [{key: value for key, value in dataset.items() if key not in ("local", "seconds")}
            for dataset in report["datasets"]]


def test_kill_verify_quick(tmp_path):
    crash_verify(tmp_path, QUICK, SEED)


@pytest.mark.faults
def test_kill_verify_many_times(tmp_path):
    crash_verify(tmp_path, FULL * 2, SEED + 1)


# --- push --------------------------------------------------------------------------------


def crash_push(tmp_path, kills, seed):
    world = World(tmp_path, seed)
    first, seconds = measured(world, "push")
    assert first.exit_code == 0, first.output
    recovered = lost = 0
    for number in range(kills):
        new = world.change_some_files(world.data)
        world.files.update(new)
        window = random.Random(seed * 1000 + number).uniform(0.2, max(0.4, seconds * 1.2))
        result = kill_at(world.spawn("push"), window)
        context = f"seed {seed}, kill {number} at {window:.2f}s"
        assert result.exit_code in (-signal.SIGKILL, 0), f"{context}: {result.output}"
        assert "Traceback" not in result.output, context
        assert integrity_check(world.state) == "ok", context
        after = world.syncer("push")
        assert after.exit_code == 0, f"{context}: the next push failed: {after.output}"
        world.assert_restic_check()
        restored = world.restored_snapshot(tmp_path / "restored")
        lost += bytes_lost(tree_digests(world.data), restored)
        recovered += 1
    record("kill -9 during push (restic child included)", kills, recovered, lost)
    assert lost == 0


@pytest.mark.restic_versions
def test_a_push_killed_while_restic_holds_its_lock_leaves_no_lock_behind(tmp_path):
    """The power cut lands while restic's backup holds its repository lock: the next
    push clears that stale lock (restic unlock), so a plain `restic check` passes."""
    world = World(tmp_path, SEED)
    assert world.syncer("push").exit_code == 0
    write_files(world.data, {f"big/{number}.bin": os.urandom(8 * 2**20) for number in range(4)})
    push = world.spawn("push")
    locks = world.repository / "locks"
    deadline = time.monotonic() + 60
    while not any(locks.iterdir()) and push.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert push.process.poll() is None, "the push ended before restic's lock could be seen"
    result = kill_at(push, 0)
    assert result.exit_code == -signal.SIGKILL and any(locks.iterdir()), "the kill did not land inside the lock"
    after = world.syncer("push", "-v")
    assert after.exit_code == 0, after.output
    assert f"{RESTIC} unlock" in after.stderr, after.stderr  # syncer ran the restic under test
    # a lock file the kill cut short cannot be read, and restic passes over it: what must
    # be gone is every lock restic would honour (the plain `restic check` below says so too)
    left = [shown.stdout for shown in (world.restic("cat", "lock", path.name, "--no-lock") for path in locks.iterdir())
            if shown.returncode == 0 and shown.stdout.strip()]
    assert not left, f"the next push left the dead restic's lock in the repository: {left} {after.stderr}"
    world.assert_restic_check()
    lost = bytes_lost(tree_digests(world.data), world.restored_snapshot(tmp_path / "restored"))
    record("kill -9 while restic backup holds its lock", 1, 1, lost)
    assert lost == 0


@pytest.mark.restic_versions
def test_kill_push_quick(tmp_path):
    crash_push(tmp_path, QUICK, SEED)


@pytest.mark.restic_versions
@pytest.mark.faults
def test_kill_push_many_times(tmp_path):
    crash_push(tmp_path, FULL, SEED + 2)


# --- pull --------------------------------------------------------------------------------


def crash_pull(tmp_path, kills, seed):
    world = World(tmp_path, seed)
    write_policy(world.policies, "ds", {
        "path": str(world.data), "authority": {"type": "local", "path": str(world.authority)},
        "pull": {"delete": False}})
    _, seconds = measured(world, "pull")
    recovered = lost = 0
    for number in range(kills):
        old = tree_digests(world.data)
        new = world.change_some_files(world.authority, count=6)
        for path in world.chooser.sample(sorted(world.files), 3):  # and some vanish locally
            (world.data / path).unlink(missing_ok=True)
        world.files.update(new)
        authority = tree_digests(world.authority)
        moment = random.Random(seed * 1000 + number).uniform(0.05, max(0.3, seconds * 1.5))
        result = kill_at(world.spawn("pull", "--json"), moment)
        context = f"seed {seed}, kill {number} at {moment:.2f}s"
        assert result.exit_code in (-signal.SIGKILL, 0), f"{context}: {result.output}"
        assert "Traceback" not in result.output, context
        assert_no_partial_files(world.data, digest_set(old, authority))
        assert integrity_check(world.state) == "ok", context
        after = world.syncer("pull", "--json")
        assert after.exit_code == 0, f"{context}: the next pull failed: {after.output}"
        now = tree_digests(world.data)
        leftovers = [path for path in now if path.rsplit("/", 1)[-1].startswith(".syncer-")]
        assert not leftovers, f"{context}: staging files left behind: {leftovers}"
        lost += bytes_lost(authority, now)
        recovered += 1
    record("kill -9 during pull", kills, recovered, lost)
    assert lost == 0


def test_kill_pull_quick(tmp_path):
    crash_pull(tmp_path, QUICK, SEED)


@pytest.mark.faults
def test_kill_pull_many_times(tmp_path):
    crash_pull(tmp_path, FULL, SEED + 3)


# --- GitLab pull (git children) ---------------------------------------------------------


def processes_under(root):
    """PIDs of live processes whose working directory or command line is below `root`
    (git clones and fetches into the mirrors, and their helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            where = os.readlink(entry / "cwd")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and (where.startswith(str(root)) or str(root) in command):
            found.append(int(entry.name))
    return found


def crash_gitlab_pull(tmp_path, kills, seed):
    from syncer.endpoints.git import find_mirrors
    from tests.fakes import gitlab

    chooser = random.Random(seed)
    local = tmp_path / "local"
    local.mkdir()
    with gitlab.FakeGitLab(tmp_path / "gitlab-server") as fake:
        projects = {}
        for number in range(4):
            project = fake.add_project("team", f"p{number}")
            fake.commit(project, {f"f{i}.txt": chooser.randbytes(150_000).hex() for i in range(3)})
            projects[f"team/p{number}.git"] = project
        write_secret(tmp_path / "secrets" / "gitlab.env", f"GITLAB_TOKEN={gitlab.TOKEN}\n")
        write_policy(tmp_path / "policies", "ds", {
            "path": str(local), "authority": {"type": "gitlab", "url": fake.url, "groups": ["team"],
                                              "credentials": str(tmp_path / "secrets" / "gitlab.env")}})

        def pull():
            return run("pull", "--json", policies=tmp_path / "policies", state=tmp_path / "state")

        def upstream():
            return {path: {f"refs/heads/{name}" if not name.startswith("refs/") else name: sha
                           for name, sha in fake.refs(project)[0].items()} for path, project in projects.items()}

        started = time.monotonic()
        first = pull()
        seconds = time.monotonic() - started
        assert first.exit_code == 0, first.output
        recovered = 0
        for number in range(kills):
            before = {path: mirror_refs(local / path) for path in projects}
            for project in chooser.sample(sorted(projects.values()), 2):  # new commits to fetch
                fake.commit(project, {f"new-{number}.txt": chooser.randbytes(100_000).hex()})
            if number % 2 == 0:  # and a mirror lost, to clone again
                shutil.rmtree(local / sorted(projects)[number % len(projects)])
            now = upstream()
            moment = random.Random(seed * 1000 + number).uniform(0.05, max(0.3, seconds * 1.2))
            result = kill_at(spawn_syncer("pull", "--json", policies=tmp_path / "policies",
                                          state=tmp_path / "state"), moment)
            context = f"seed {seed}, kill {number} at {moment:.2f}s"
            assert result.exit_code in (-signal.SIGKILL, 0), f"{context}: {result.output}"
            assert "Traceback" not in result.output, context
            deadline = time.monotonic() + 10
            while processes_under(local) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not processes_under(local), f"{context}: a git child of the killed pull outlived it"
            for path in find_mirrors(local):  # under its real name: a whole mirror, old or new
                refs = mirror_refs(local / path)
                assert refs is not None, f"{context}: {path} is a partial mirror under its real name"
                assert refs in (before.get(path), now[path]), f"{context}: {path} holds refs of neither pull"
            assert integrity_check(tmp_path / "state") == "ok", context
            after = pull()
            assert after.exit_code == 0, f"{context}: the next pull failed: {after.output}"
            unrepaired = [path for path, refs in now.items() if mirror_refs(local / path) != refs]
            assert not unrepaired, f"{context}: the next pull did not repair {unrepaired}"
            left = [os.path.join(folder, name) for folder, names, _ in os.walk(local) for name in names
                    if name.startswith(".syncer-")]
            assert not left, f"{context}: the next pull left the killed clone's folder {left}"
            verified = run("verify", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
            assert verified.exit_code == 0, f"{context}: {verified.output}"
            recovered += 1
    record("kill -9 during pull (gitlab, git children)", kills, recovered, 0)  # every mirror repaired, or it failed


def test_kill_gitlab_pull_quick(tmp_path):
    crash_gitlab_pull(tmp_path, QUICK, SEED)


@pytest.mark.faults
def test_kill_gitlab_pull_many_times(tmp_path):
    crash_gitlab_pull(tmp_path, FULL // 2, SEED + 5)


# --- restore -----------------------------------------------------------------------------


def crash_restore(tmp_path, kills, seed, in_place):
    world = World(tmp_path, seed)
    pushed = world.syncer("push")
    assert pushed.exit_code == 0, pushed.output
    snapshot = tree_digests(world.data)
    target = tmp_path / "target"
    arguments = ["restore", "ds", "--to", str(target)] + (["--in-place"] if in_place else [])
    recovered = lost = 0
    seconds = None
    for number in range(kills + 1):
        shutil.rmtree(target, ignore_errors=True)
        old = {}
        if in_place:  # a damaged copy: some files missing, some with other bytes
            shutil.copytree(world.data, target)
            for path in world.chooser.sample(sorted(snapshot), 6):
                (target / path).unlink()
            for path in world.chooser.sample(sorted(tree_digests(target)), 4):
                (target / path).write_bytes(b"damaged" * 100)
            old = tree_digests(target)
        if seconds is None:  # the first round measures the window
            result, seconds = measured(world, *arguments)
            assert result.exit_code == 0, result.output
            assert tree_digests(target) == snapshot
            continue
        moment = random.Random(seed * 1000 + number).uniform(0.05, seconds * 1.2)
        result = kill_at(world.spawn(*arguments), moment)
        context = f"seed {seed}, kill {number} at {moment:.2f}s"
        assert result.exit_code in (-signal.SIGKILL, 0), f"{context}: {result.output}"
        assert "Traceback" not in result.output, context
        assert integrity_check(world.state) == "ok", context
        now = tree_digests(target) if target.exists() else {}
        if not in_place:
            # All or nothing: an interrupted restore never leaves a half tree at the target.
            assert now in ({}, snapshot), f"{context}: the target holds a partial restore"
        else:
            assert_no_partial_files(target, digest_set(old, snapshot))
        # The next ordinary run: --in-place is idempotent, so it always runs again; a
        # restore to a new target runs again unless the killed one had finished.
        rerun = in_place or now != snapshot
        if rerun:
            after = world.syncer(*arguments)
            assert after.exit_code == 0, f"{context}: the next restore failed: {after.output}"
        world.assert_restic_check()
        lost += bytes_lost(snapshot, tree_digests(target))
        recovered += 1
        stale = sorted(path for path in tmp_path.iterdir() if ".syncer-restore-" in path.name)
        if rerun:
            assert not stale, f"{context}: the killed restore's staging directory was never removed: {stale}"
        else:  # killed after the final rename: at most the empty shell of the staging directory
            assert not [path for directory in stale for path in directory.rglob("*") if not path.is_dir()], context
    record(f"kill -9 during restore{' --in-place' if in_place else ''}", kills, recovered, lost)
    assert lost == 0


@pytest.mark.restic_versions
def test_kill_restore_quick(tmp_path):
    crash_restore(tmp_path, QUICK, SEED, in_place=False)


def test_restore_force_killed_between_its_two_renames(tmp_path):
    """`restore --force` over the dataset renames the old tree aside, then the restored
    one into place. Killed between the two, the dataset's folder is missing and the old
    tree sits in .data.syncer-old-<pid>: the next command says so and how to finish,
    and syncer never deletes it."""
    world = World(tmp_path, SEED)
    assert world.syncer("push").exit_code == 0
    snapshot = tree_digests(world.data)
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = world.data.parent / f".{world.data.name}.syncer-old-{dead.pid}"
    staging = world.data.parent / f".{world.data.name}.syncer-restore-{dead.pid}"
    (staging / "half").mkdir(parents=True)
    (staging / "half" / "restored.bin").write_bytes(b"a restored file")
    world.data.rename(old)  # the first rename happened, the kill came before the second
    verified = world.syncer("verify")
    assert verified.exit_code == 3 and "Traceback" not in verified.output, verified.output
    assert f"{world.data} is missing and {old} holds its previous content" in verified.stderr, verified.stderr
    restored = world.syncer("restore", "ds", "--to", world.data, "--json")
    assert restored.exit_code == 0, restored.output
    assert "killed between its two renames" in restored.stderr and f"mv '{old}'" in restored.stderr
    assert restored.json()["left_by_killed_restore"] == [str(old)]
    assert tree_digests(world.data) == snapshot
    assert tree_digests(old) == snapshot, "the old tree was touched"
    assert not staging.exists(), "the killed restore's staging directory was left"
    again = world.syncer("verify")
    assert again.exit_code == 0, again.output
    forced = world.syncer("restore", "ds", "--to", world.data, "--force")
    assert forced.exit_code == 0 and f"rm -rf '{old}'" in forced.stderr, forced.output
    lost = bytes_lost(snapshot, tree_digests(world.data)) + bytes_lost(snapshot, tree_digests(old))
    record("restore --force killed between its two renames", 1, 1, lost)
    assert lost == 0


@pytest.mark.faults
@pytest.mark.parametrize("in_place", [False, True], ids=["new-target", "in-place"])
@pytest.mark.restic_versions
def test_kill_restore_many_times(tmp_path, in_place):
    crash_restore(tmp_path, FULL, SEED + 4, in_place)


# --- repair ------------------------------------------------------------------------------


def rot(path, chooser):
    """Flip one byte of `path` and set its mtime back, as bit rot would leave it."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    position = chooser.randrange(len(data))
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def crash_repair(tmp_path, kills, seed):
    world = World(tmp_path, seed)
    good = tree_digests(world.data)
    first = world.syncer("verify")
    assert first.exit_code == 0, first.output
    recovered = lost = 0
    seconds = None
    for number in range(kills + 1):
        victims = world.chooser.sample(sorted(world.files), 5)
        for path in victims:
            rot(world.data / path, world.chooser)
        rotten = tree_digests(world.data)
        scrubbed = world.syncer("scrub", "--fraction", "100%", "--json")
        assert scrubbed.exit_code == 1, scrubbed.output
        if seconds is None:
            result, seconds = measured(world, "repair", "--json")
            assert result.exit_code == 0, result.output
            assert tree_digests(world.data) == good
            continue
        moment = random.Random(seed * 1000 + number).uniform(0.05, seconds * 1.2)
        result = kill_at(world.spawn("repair", "--json"), moment)
        context = f"seed {seed}, kill {number} at {moment:.2f}s"
        assert result.exit_code in (-signal.SIGKILL, 0), f"{context}: {result.output}"
        assert "Traceback" not in result.output, context
        assert integrity_check(world.state) == "ok", context
        assert_no_partial_files(world.data, digest_set(good, rotten))
        after = world.syncer("repair", "--json")
        assert after.exit_code == 0, f"{context}: the next repair failed: {after.output}"
        scrub_again = world.syncer("scrub", "--fraction", "100%", "--json")
        assert scrub_again.exit_code == 0, f"{context}: {scrub_again.output}"
        lost += bytes_lost(good, tree_digests(world.data))
        recovered += 1
    record("kill -9 during repair", kills, recovered, lost)
    assert lost == 0


def test_kill_repair_quick(tmp_path):
    crash_repair(tmp_path, QUICK, SEED)


@pytest.mark.faults
def test_kill_repair_many_times(tmp_path):
    crash_repair(tmp_path, FULL, SEED + 5)
