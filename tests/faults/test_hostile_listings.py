"""Hostile remote listings: names with '..', absolute paths, NUL and control
characters, Unicode that normalises to the same name, names differing only in
case, over-long names, duplicate entries, and sizes and checksums that lie.

Whatever the authority lists, pull writes nothing outside the dataset, every file
it writes holds exactly the bytes the authority serves under that exact name, a
name that would escape is refused, and verify never reports a lying or refused
entry as ok. S3 keys come from moto (fuzzed with hypothesis, in-process through
the actions); Bunny listings from its loopback fake (through the CLI)."""

import hashlib
import os
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from syncer.endpoints.base import check_relative_path
from tests.fakes import bunny
from tests.faults.support import record, run
from tests.support import write_policy, write_secret, write_tree

QUICK_EXAMPLES, FULL_EXAMPLES = 15, 150

COMPONENTS = ["..", ".", "", "a", "b", "A", "caf\u00e9", "cafe\u0301", "ctl\x01x", "nul\x00x", "tab\tx", "y" * 256,
              "back\\slash", " ", "~", "\u202eevil", "CON", "-rf", "x.tmp"]


def outside_snapshot(root, inside):
    """Every path below `root` that is not below one of `inside`."""
    found = set()
    for directory, names, files in os.walk(root):
        if any(Path(directory).is_relative_to(path) for path in inside):
            names[:] = []
            continue
        for name in names + files:
            path = os.path.join(directory, name)
            if not any(Path(path) == inner for inner in inside):
                found.add(path)
    return found


def local_tree(root):
    tree = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            tree[os.path.relpath(path, root)] = Path(path).read_bytes()
    return tree


# --- S3, fuzzed ---------------------------------------------------------------------------------------


keys = st.lists(st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4).map("/".join), min_size=1, max_size=6,
                unique=True)


def s3_fuzz(s3_server, examples):
    from syncer.actions.pull import run_pull
    from syncer.actions.verify import run_verify
    from syncer.errors import exit_code_of
    from syncer.index.db import StateDB
    from syncer.policy.load import load_policies

    client = s3_server.client()
    bucket = f"hostile-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    examples_run = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate),  # no shrinking: each example is a real pull
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(keys, st.data())
    def check(names, data):
        prefix = f"p{len(examples_run)}"
        bodies = {name: data.draw(st.binary(min_size=1, max_size=64)) for name in names}
        for name, body in bodies.items():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)
        with tempfile.TemporaryDirectory() as directory:
            sandbox = Path(directory) / "outer" / "inner"
            local, state = sandbox / "data", sandbox / "state"
            local.mkdir(parents=True)
            state.mkdir()
            credentials = write_secret(sandbox / "s3.env", s3_server.credentials_text())
            write_policy(sandbox / "policies", "ds", {"path": str(local), "authority": {
                "type": "s3", "bucket": bucket, "prefix": prefix, "endpoint_url": s3_server.url,
                "credentials": str(credentials)}})
            before = outside_snapshot(directory, (local, state))
            policies = load_policies(sandbox / "policies")
            db = StateDB(state)
            try:
                pulled, verified = run_pull(policies, db), run_verify(policies, db)
            finally:
                db.close()
            assert outside_snapshot(directory, (local, state)) == before, "pull wrote outside the dataset"
            [pull_report], [verify_report] = pulled["datasets"], verified["datasets"]
            assert "error" not in pull_report, pull_report
            written = local_tree(local)
            for path, content in written.items():
                assert path in bodies, f"pull wrote {path!r}, a name the authority does not list"
                assert check_relative_path(path) is None, path
                assert content == bodies[path], f"{path!r} holds other bytes than the authority serves"
            statuses = {item["path"]: item["status"] for item in pull_report["items"]}
            # A key ending in "/" is a folder marker, not data: it is neither written nor listed.
            for name in [name for name in bodies if name == "" or name.endswith("/")]:
                assert name not in written and name not in statuses, name
                del bodies[name]
            for name in bodies:
                if check_relative_path(name):
                    assert statuses.get(name.replace("\x00", "?")) == "refused", (name, statuses)
            not_ok = {item["path"] for item in verify_report["items"]}
            for name in bodies:
                if check_relative_path(name):
                    assert name.replace("\x00", "?") in not_ok, f"unsafe {name!r} was counted as ok"
            truly_ok = sum(1 for path, content in written.items() if content == bodies.get(path))
            assert verify_report["counts"]["ok"] <= truly_ok, verify_report
            assert exit_code_of(pulled["datasets"]) in (0, 1) and exit_code_of(verified["datasets"]) in (0, 1)
        examples_run.append(len(names))

    check()
    return sum(examples_run)


def test_s3_hostile_keys_fuzzed_quick(s3_server):
    count = s3_fuzz(s3_server, QUICK_EXAMPLES)
    record("hostile input: fuzzed S3 keys (pull + verify)", count)


@pytest.mark.faults
def test_s3_hostile_keys_fuzzed_many(s3_server):
    count = s3_fuzz(s3_server, FULL_EXAMPLES)
    record("hostile input: fuzzed S3 keys (pull + verify)", count)


# --- Bunny: duplicates and lies -------------------------------------------------------------------------


class LyingBunny(bunny.FakeBunny):
    """A Bunny zone whose listing can lie about an object's checksum or size, or list
    an entry twice."""

    def __init__(self, **options):
        super().__init__(**options)
        self.lies = {}  # key -> {"Checksum": ..., "Length": ...}
        self.duplicates = {}  # directory -> [(name, bytes)] listed a second time with other bytes

    def object_document(self, directory, name, is_directory):
        document = super().object_document(directory, name, is_directory)
        key = f"{directory}/{name}" if directory else name
        document.update(self.lies.get(key, {}))
        return document

    def list_directory(self, directory):
        response = super().list_directory(directory)
        if directory in self.duplicates:
            import json

            listing = json.loads(response.body)
            for name, data in self.duplicates[directory]:
                twin = dict(next(entry for entry in listing if entry["ObjectName"] == name))
                twin.update(Length=len(data), Checksum=hashlib.sha256(data).hexdigest().upper())
                listing.append(twin)
            response.body = json.dumps(listing).encode()
        return response


def test_bunny_lying_and_hostile_listing(tmp_path):
    with LyingBunny(zone="files") as fake:
        good = {"good.txt": b"a good file", "Photo.JPG": b"upper", "photo.jpg": b"lower",
                "caf\u00e9.txt": b"composed", "cafe\u0301.txt": b"decomposed", "dup.txt": b"first twin",
                "lies/checksum.bin": b"served bytes", "lies/size.bin": b"twelve bytes", "lies/kept.bin": b"local good"}
        for name, data in good.items():
            fake.put_file(f"site/{name}", data)
        fake.lies["site/lies/checksum.bin"] = {"Checksum": hashlib.sha256(b"other bytes!").hexdigest().upper()}
        fake.lies["site/lies/size.bin"] = {"Length": 5}
        fake.lies["site/lies/kept.bin"] = {"Checksum": hashlib.sha256(b"local good").hexdigest().upper(),
                                           "Length": len(b"local good")}
        fake.files["site/lies/kept.bin"] = b"evil bytes"  # serves other bytes than it lists
        fake.duplicates["site"] = [("dup.txt", b"second twin, other bytes")]
        for name in ("..", "../escape.txt", "/abs.txt", "a/b.txt", "nul\x00.txt", "ctl\x01.txt", "z" * 300):
            fake.add_raw_entry("site", name, b"hostile")
        outer = tmp_path / "outer"
        local = write_tree(outer / "inner" / "local", {"lies/kept.bin": b"local good"})
        write_secret(tmp_path / "secrets" / "cloud.env", f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        write_policy(tmp_path / "policies", "site", {
            "path": str(local), "authority": {"type": "bunnycdn", "zone": "files", "path": "site",
                                              "endpoint": fake.url, "credentials": "../secrets/cloud.env"}})
        before = outside_snapshot(tmp_path, (local, tmp_path / "state"))
        pulled = run("pull", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
        assert pulled.exit_code == 1, pulled.output
        assert "Traceback" not in pulled.output
        assert outside_snapshot(tmp_path, (local, tmp_path / "state")) == before, "pull wrote outside the dataset"
        written = local_tree(local)
        assert written["lies/kept.bin"] == b"local good", "bad bytes replaced a good local file"
        for path, content in written.items():
            served = {**good, "lies/kept.bin": b"local good"}
            assert content == served.get(path), f"{path!r} holds bytes the authority never vouched for"
        assert "lies/checksum.bin" not in written and "lies/size.bin" not in written
        statuses = {item["path"]: item["status"] for item in pulled.json()["datasets"][0]["items"]}
        for name in ("lies/checksum.bin", "lies/size.bin"):
            assert statuses.get(name) == "failed", (name, statuses)
        refused = [path for path, status in statuses.items() if status == "refused"]
        assert len(refused) >= 6, statuses
        verified = run("verify", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
        assert verified.exit_code == 1, verified.output
        [report] = verified.json()["datasets"]
        not_ok = {item["path"]: item["status"] for item in report["items"]}
        for name in ("lies/checksum.bin", "lies/size.bin"):
            assert name in not_ok, f"the lying entry {name} was counted as ok"
        # The twins disagree: whichever the local copy holds, one of them differs.
        assert "dup.txt" in not_ok, f"dup.txt is listed twice with different bytes, yet counted ok: {not_ok}"
    record("hostile input: Bunny listing (escapes, twins, lying sizes and checksums)", 1)
