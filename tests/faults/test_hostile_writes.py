"""Hostile trees, snapshots and names against syncer's writes (issue 19).

syncer runs as root and writes into datasets whose contents come from other people's
services. A planted symlink, a chain of links in a snapshot, a folder swapped for a
link while a pull runs, a crafted name: none may steer a write outside the dataset,
cost a user's file, or act on the terminal. Each test is one repro of the issue,
run through the CLI (or the actions, where hypothesis drives many examples)."""

import hashlib
import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.fakes import bunny
from tests.faults.support import assert_clean_failure, record, run
from tests.integration.offsite_support import PASSWORD, Dataset, make_dataset
from tests.support import require_tool, write_policy, write_secret, write_tree

TEMPORARY = ".syncer-tmp-" + "0123456789abcdef" * 2


def local_authority(tmp_path, local_files, authority_files):
    """A dataset at tmp_path/local whose authority is the folder tmp_path/authority."""
    local = write_tree(tmp_path / "local", local_files)
    local.mkdir(exist_ok=True)
    authority = write_tree(tmp_path / "authority", authority_files)
    write_policy(tmp_path / "policies", "ds", {"path": str(local), "authority": {"type": "local",
                                                                                   "path": str(authority)}})
    return local, authority


def cli(tmp_path, *arguments):
    return run(*arguments, policies=tmp_path / "policies", state=tmp_path / "state")


def items(result):
    [dataset] = result.json()["datasets"]
    return {item["path"]: item for item in dataset["items"]}


def kernel_resolves_outside(path, root):
    """Whether the kernel, following `path` (links and all), lands outside `root`;
    False when it lands nowhere (dangling, a loop)."""
    try:
        descriptor = os.open(path, os.O_PATH)
    except OSError:
        return False
    try:
        real = os.readlink(f"/proc/self/fd/{descriptor}")
    finally:
        os.close(descriptor)
    root = os.path.realpath(root)
    return not (real == root or real.startswith(root + "/"))


def links_below(root):
    for directory, folders, files in os.walk(root):
        for name in folders + files:
            if os.path.islink(os.path.join(directory, name)):
                yield os.path.join(directory, name)


# --- 1: repair through a symlinked folder -----------------------------------------------------------------


def test_repair_does_not_write_through_a_symlinked_folder(tmp_path):
    files = {"a.txt": b"a", "sub/b.txt": b"b"}
    local, _ = local_authority(tmp_path, files, files)
    assert cli(tmp_path, "verify").exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(local / "sub")
    (local / "sub").symlink_to(outside)
    assert cli(tmp_path, "verify").exit_code == 1
    repaired = cli(tmp_path, "repair", "--json")
    assert_clean_failure(repaired, exit_code=1)
    assert items(repaired)["sub/b.txt"]["status"] == "refused"
    assert "sub is a symlink here" in items(repaired)["sub/b.txt"]["reason"]
    assert list(outside.iterdir()) == [], "repair wrote outside the dataset"
    human = cli(tmp_path, "repair")
    assert "refused        sub/b.txt  (sub is a symlink here; not writing through it)" in human.stdout
    record("hostile input: repair through a symlinked folder", 1)


# --- 2: chains of links in a snapshot ---------------------------------------------------------------------


def test_a_chain_of_links_cannot_point_a_restore_outside(tmp_path):
    dataset = make_dataset(tmp_path, {"a.txt": b"a"})
    os.symlink(".", dataset.data / "x")
    os.symlink("x/" * 10 + "../" * 10 + "etc/passwd", dataset.data / "evil")
    assert dataset.syncer("push").exit_code == 0
    target = tmp_path / "new"
    restored = dataset.syncer("restore", "photos", "--to", target)
    assert_clean_failure(restored, exit_code=1, mentions=("'evil', a symlink pointing outside the dataset",
                                                          "the target was not touched"))
    assert not target.exists()
    record("hostile input: a chain of links in a snapshot", 1)


def test_a_fifo_in_a_snapshot_is_not_restored_into_a_dataset(tmp_path):
    dataset = make_dataset(tmp_path, {"a.txt": b"a"})
    os.mkfifo(dataset.data / "pipe")  # a device node is refused the same way; making one needs root
    assert dataset.syncer("push").exit_code == 0
    target = tmp_path / "new"
    restored = dataset.syncer("restore", "photos", "--to", target)
    assert_clean_failure(restored, exit_code=1, mentions=("'pipe', a FIFO", "the target was not touched"))
    assert not target.exists()
    record("hostile input: a FIFO in a snapshot", 1)


# Chains: "a" loops back ("." or ".." or a folder), the other links hop through it,
# climb with "..", then name something: lexically inside, yet the kernel may land
# outside. Bait files outside the tree make such a landing visible.
loop_link = st.sampled_from([".", ".", ".", "d", "d/e", "b", ".."])


@st.composite
def climbing_link(draw):
    hops = draw(st.lists(st.sampled_from(["a", "a", "a", "d", "e", "."]), max_size=6))
    ups = draw(st.integers(0, len(hops) + 1))  # mostly lexically inside: the chain decides
    tail = draw(st.sampled_from(["", "", "f.txt", "d/e/f.txt", "missing"]))
    return "/".join(hops + [".."] * ups + ([tail] if tail else [])) or "."


link_sets = st.fixed_dictionaries({"a": loop_link, "b": climbing_link()}, optional={
    "d/a": climbing_link(), "d/e/a": st.one_of(climbing_link(), st.sampled_from(["/etc/passwd", "/"]))})


def plant(root, links):
    """Make the tree: two files in folders, then the symlinks `links` {name: text}."""
    write_tree(root, {"f.txt": b"file", "d/e/f.txt": b"deep"})
    for name, text in links.items():
        os.symlink(text, root / name)


def bait(*folders):
    """Files with the tree's own names outside it, where a climbing link would land."""
    for folder in folders:
        write_tree(folder, {"f.txt": b"bait", "d/e/f.txt": b"bait"})


CHAINS = [{"a": ".", "b": "a/a/../f.txt"},  # lexically a/f.txt; the kernel climbs out of the tree
          {"a": "d", "b": "a/../../root/f.txt"}]  # out and back in through the tree's own name


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(link_sets)
@example(CHAINS[0])
@example(CHAINS[1])
def test_the_one_escape_check_agrees_with_the_kernel_wherever_the_tree_is_moved(links):
    from syncer.fsio import find_escaping_link

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "data" / "root"
        bait(Path(directory), root.parent)
        plant(root, links)
        verdict = find_escaping_link(root)
        outside = [path for path in links_below(root) if kernel_resolves_outside(path, root)]
        # Moved elsewhere, with a decoy where it was: a link that went out and back in
        # through the root's own name now lands in the decoy.
        moved = Path(directory) / "data" / "moved"
        os.rename(root, moved)
        plant(root, {})
        outside += [path for path in links_below(moved) if kernel_resolves_outside(path, moved)]
        if verdict is None:
            assert outside == [], f"{links}: passed as safe, yet {outside} resolve outside their tree"


def restore_chains(examples):
    """Push trees with generated chains of links and restore each to a new target:
    the restore is refused, or nothing in the target resolves outside it."""
    from syncer.actions.push import run_push
    from syncer.actions.restore import run_restore
    from syncer.index.db import StateDB
    from syncer.policy.load import load_policies

    require_tool("restic")
    seen = {"refused": 0, "restored": 0}
    with tempfile.TemporaryDirectory() as directory:
        dataset = make_dataset(Path(directory), {"f.txt": b"file"}, name="chains")
        bait(Path(directory) / "outer")
        policies = load_policies(dataset.policies)
        db = StateDB(dataset.state)

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate),  # no shrinking: each example is a push and a restore
                  suppress_health_check=[HealthCheck.too_slow])
        @given(link_sets)
        @example(CHAINS[0])
        def check(links):
            shutil.rmtree(dataset.data)
            plant(dataset.data, links)
            report = run_push(policies, db)
            assert "error" not in report["datasets"][0], report
            target = Path(tempfile.mkdtemp(dir=Path(directory) / "outer")) / "target"
            bait(target.parent)
            restored = run_restore(policies[0], db, target)
            if "error" in restored:
                assert "symlink pointing outside" in restored["error"], restored
                assert restored["exit_code"] == 1, restored
                assert not target.exists(), "a refused restore touched the target"
                seen["refused"] += 1
                return
            outside = [path for path in links_below(target) if kernel_resolves_outside(path, target)]
            assert outside == [], f"{links}: the restore left {outside} resolving outside {target}"
            seen["restored"] += 1

        try:
            check()
        finally:
            db.close()
    return seen


def test_generated_chains_of_links_in_snapshots_quick():
    seen = restore_chains(2)
    record("hostile input: generated chains of links in snapshots (push + restore)", sum(seen.values()))


@pytest.mark.faults
def test_generated_chains_of_links_in_snapshots_many():
    seen = restore_chains(60)
    assert seen["refused"] and seen["restored"], seen  # both kinds of tree were tried
    record("hostile input: generated chains of links in snapshots (push + restore)", sum(seen.values()))


# --- 3: users' files named like syncer's temporaries ---------------------------------------------------------


def test_only_syncers_exact_temporary_shape_is_removed(tmp_path):
    local, _ = local_authority(
        tmp_path, {".syncer-pull-notes.txt": b"my notes", TEMPORARY: b"half a download", "a.txt": b"a"},
        {"a.txt": b"a", ".syncer-repair-keep.txt": b"the authority's own", f"sub/{TEMPORARY}": b"planted"})
    pulled = cli(tmp_path, "pull", "--json")
    assert_clean_failure(pulled, exit_code=1)  # the notes are local-only; the planted name is refused
    assert (local / ".syncer-pull-notes.txt").read_bytes() == b"my notes"
    assert items(pulled)[".syncer-pull-notes.txt"]["status"] == "local_only"
    assert items(pulled)[f"sub/{TEMPORARY}"]["status"] == "refused"
    assert not (local / TEMPORARY).exists(), "a leftover of syncer's exact shape is syncer's own"
    assert (local / ".syncer-repair-keep.txt").read_bytes() == b"the authority's own"
    (local / "a.txt").unlink()
    cli(tmp_path, "verify")
    repaired = cli(tmp_path, "repair", "--json")
    assert_clean_failure(repaired, exit_code=1)  # the planted name is refused again
    assert items(repaired)[f"sub/{TEMPORARY}"]["status"] == "refused"
    assert items(repaired)["a.txt"]["status"] == "repaired"
    assert (local / "a.txt").read_bytes() == b"a"
    assert not (local / "sub" / TEMPORARY).exists()
    assert (local / ".syncer-repair-keep.txt").read_bytes() == b"the authority's own"
    assert (local / ".syncer-pull-notes.txt").read_bytes() == b"my notes"
    record("hostile input: user files named like syncer's temporaries", 1)


# --- 4: a dataset path with glob characters ---------------------------------------------------------------


def test_excludes_hold_for_a_dataset_path_with_glob_characters(tmp_path):
    require_tool("restic")
    data = write_tree(tmp_path / "ph[2024]", {"a.txt": b"a", "private/secret.txt": b"secret"})
    password = write_secret(tmp_path / "secrets/restic.pass", PASSWORD + "\n")
    write_policy(tmp_path / "policies", "photos", {
        "path": str(data), "exclude": ["private/**"], "authority": {"type": "local", "path": str(data)},
        "offsite": {"repository": str(tmp_path / "repo"), "password_file": str(password),
                    "manifest_root": str(tmp_path / "manifest-root")}})
    dataset = Dataset("photos", tmp_path, data, tmp_path / "policies", tmp_path / "state", str(tmp_path / "repo"),
                      password)
    assert dataset.syncer("push").exit_code == 0
    listed = dataset.restic("ls", "latest")
    assert listed.returncode == 0, listed.stderr
    assert f"{data}/a.txt" in listed.stdout.splitlines()
    assert "private" not in listed.stdout, "an excluded folder went offsite"
    record("hostile input: excludes under a dataset path with glob characters", 1)


# --- 7: restore --in-place ----------------------------------------------------------------------------


def test_in_place_checks_every_destination_before_writing_and_keeps_what_it_replaces(tmp_path):
    dataset = make_dataset(tmp_path, {"a.txt": b"good a", "b.txt": b"good b", "c/d.txt": b"good d"})
    assert dataset.syncer("push").exit_code == 0
    target = write_tree(tmp_path / "target", {"a.txt": b"damaged"})
    (target / "b.txt").mkdir()
    (target / "c").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    refused = dataset.syncer("restore", "photos", "--to", target, "--in-place")
    assert_clean_failure(refused, exit_code=2, mentions=("nothing was written", "b.txt is not a regular file",
                                                        "c is a symlink"))
    assert (target / "a.txt").read_bytes() == b"damaged", "a file was written before the check finished"
    assert list((tmp_path / "outside").iterdir()) == []
    (target / "b.txt").rmdir()
    (target / "c").unlink()
    mended = dataset.syncer("restore", "photos", "--to", target, "--in-place", "--json")
    assert mended.exit_code == 0, mended.output
    report = mended.json()
    assert report["files_written"] == 3 and report["files_replaced"] == 1
    assert (target / "a.txt").read_bytes() == b"good a"
    assert (Path(report["replaced_kept_in"]) / "a.txt").read_bytes() == b"damaged"
    record("hostile input: restore --in-place onto a target that cannot take it", 1)


# --- 8: restore --to a symlink ----------------------------------------------------------------------------


def test_restore_to_a_symlink_follows_it_deliberately(tmp_path):
    dataset = make_dataset(tmp_path, {"a.txt": b"good a"})
    assert dataset.syncer("push").exit_code == 0
    disk = tmp_path / "disk"
    (disk / "empty").mkdir(parents=True)
    (tmp_path / "to-empty").symlink_to(disk / "empty")
    restored = dataset.syncer("restore", "photos", "--to", tmp_path / "to-empty")
    assert restored.exit_code == 0, restored.output
    assert (disk / "empty/a.txt").read_bytes() == b"good a"
    assert (tmp_path / "to-empty").is_symlink()
    write_tree(disk / "full", {"old.txt": b"old"})
    (tmp_path / "to-full").symlink_to(disk / "full")
    forced = dataset.syncer("restore", "photos", "--to", tmp_path / "to-full", "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "to-full").is_symlink() and os.readlink(tmp_path / "to-full") == str(disk / "full")
    assert sorted(os.listdir(disk / "full")) == ["a.txt"]
    assert not [name for name in os.listdir(tmp_path) + os.listdir(disk) if "syncer-" in name], "leftovers"
    (tmp_path / "to-nothing").symlink_to(tmp_path / "missing")
    dangling = dataset.syncer("restore", "photos", "--to", tmp_path / "to-nothing")
    assert_clean_failure(dangling, exit_code=2, mentions=("is a symlink to", "not an existing directory"))
    record("hostile input: restore to a symlink", 3)


# --- 9: names with control characters ---------------------------------------------------------------------


def test_control_characters_in_names_are_escaped_in_the_human_report(tmp_path):
    names = ["esc\x1b[2Jclear.txt", "a\n  ok             forged.txt", "rtl\u202eevil.txt"]
    local_authority(tmp_path, {}, {name: b"x" for name in names})
    human = cli(tmp_path, "verify")
    assert human.exit_code == 1, human.output
    assert "\x1b" not in human.output and "\u202e" not in human.output
    assert not any(line.startswith("  ok ") for line in human.stdout.splitlines()), "a forged report line"
    for shown in ("$'esc\\033[2Jclear.txt'", "$'a\\n  ok             forged.txt'", "$'rtl\\u202eevil.txt'"):
        assert f"missing_local  {shown}" in human.stdout, human.stdout
    as_json = cli(tmp_path, "verify", "--json")
    assert sorted(items(as_json)) == sorted(names)  # --json keeps names exactly
    record("hostile input: control characters in names (human report)", 1)


# --- 10: modes of pulled and repaired files ---------------------------------------------------------------


def test_pulled_and_repaired_files_keep_their_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        local, authority = local_authority(tmp_path, {"site/index.html": b"old"},
                                           {"site/index.html": b"new", "site/new.css": b"css"})
        (local / "site/index.html").chmod(0o664)
        assert cli(tmp_path, "pull").exit_code == 0
    finally:
        os.umask(umask)
    assert (local / "site/index.html").read_bytes() == b"new"
    assert stat.S_IMODE((local / "site/index.html").stat().st_mode) == 0o664  # the replaced file's mode
    assert stat.S_IMODE((local / "site/new.css").stat().st_mode) == 0o644  # 0o666 less the umask
    target = local / "site/index.html"
    info = target.stat()
    target.write_bytes(b"rot")  # the same size and mtime: bit rot
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert cli(tmp_path, "scrub", "--fraction", "100%").exit_code == 1
    assert cli(tmp_path, "repair").exit_code == 0
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o664
    record("hostile input: modes of pulled and repaired files", 1)


# --- 11: a damaged state database -------------------------------------------------------------------------


def test_a_state_database_with_corrupt_pages_is_one_message(tmp_path):
    local_authority(tmp_path, {f"d{n % 10}/file-{n}.txt": str(n) for n in range(1500)},
                    {f"d{n % 10}/file-{n}.txt": str(n) for n in range(1500)})
    assert cli(tmp_path, "verify").exit_code == 0
    database = tmp_path / "state/state.db"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    page = 4096
    with open(database, "r+b") as handle:
        for number in range(2, database.stat().st_size // page, 3):  # every third page but the first
            handle.seek(number * page)
            handle.write(hashlib.sha256(str(number).encode()).digest() * (page // 32))
    for command in (["verify"], ["status"], ["pull"]):
        result = cli(tmp_path, *command)
        assert_clean_failure(result, exit_code=3, mentions=(f"state database {database} is damaged",
                                                            f'sqlite3 {database} "PRAGMA integrity_check"',
                                                            "syncer verify"))
        assert result.stderr.count("is damaged") == 1, result.stderr
    record("hostile input: a state database with corrupt pages", 3)


# --- a folder swapped for a symlink while a pull runs --------------------------------------------------------


class SwappingBunny(bunny.FakeBunny):
    """A Bunny zone that calls `swap()` once, from its server thread, when the request
    whose path ends with `swap_at` arrives: between listing and writing, or while a
    download is under way."""

    def __init__(self, swap_at, swap, **options):
        super().__init__(**options)
        self.swap_at, self.swap, self.swapped = swap_at, swap, False

    def handle(self, request):
        with self.lock:
            if not self.swapped and request.path.endswith(self.swap_at):
                self.swapped = True
                self.swap()
        return super().handle(request)


@pytest.mark.parametrize("swap_at", ["/site/sub/", "/site/sub/a.txt"], ids=["after-listing", "during-download"])
def test_a_folder_swapped_for_a_symlink_during_a_pull_is_not_written_through(tmp_path, swap_at):
    local = write_tree(tmp_path / "local", {"sub/a.txt": b"old a"})
    outside = tmp_path / "outside"
    outside.mkdir()

    def swap():
        os.rename(local / "sub", local / "sub-moved")
        os.symlink(outside, local / "sub")

    with SwappingBunny(swap_at, swap, zone="files") as fake:
        fake.put_file("site/sub/a.txt", b"new a")
        fake.put_file("site/sub/b.txt", b"new b")
        write_secret(tmp_path / "secrets/cloud.env", f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        write_policy(tmp_path / "policies", "site", {
            "path": str(local), "authority": {"type": "bunnycdn", "zone": "files", "path": "site",
                                              "endpoint": fake.url, "credentials": "../secrets/cloud.env"}})
        pulled = run("pull", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
        assert fake.swapped, "the swap never happened"
    assert pulled.exit_code in (0, 1) and "Traceback" not in pulled.output, pulled.output
    assert list(outside.iterdir()) == [], "pull wrote through a symlink swapped in during the run"
    statuses = {path: item["status"] for path, item in items(pulled).items()}
    if swap_at == "/site/sub/":  # swapped before any write: every write into sub is refused
        assert statuses == {"sub/a.txt": "refused", "sub/b.txt": "refused"}, statuses
    else:  # swapped while a.txt downloads: whatever was written stays inside the dataset
        assert set(statuses.values()) <= {"downloaded", "refused", "failed"}, statuses
        for path, status in statuses.items():
            if status == "downloaded":
                assert (local / "sub-moved" / path.split("/")[1]).read_bytes() == fake.files[f"site/{path}"]
    moment = "after listing" if swap_at.endswith("/") else "during a download"
    record(f"hostile input: a folder swapped for a symlink {moment}", 1)
