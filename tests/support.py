"""Helpers shared by the test suites: run the real CLI, write policies and trees,
start the loopback S3 server."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# The restic under test: restic on PATH (Debian 12's 0.14), or the binary TEST_RESTIC
# names (`make test` runs the tests marked restic_versions again with Debian 13's 0.18).
# syncer gets it as a user would, through SYNCER_RESTIC.
RESTIC = os.environ.get("TEST_RESTIC") or "restic"


def restic_setting():
    """The environment that makes syncer run the restic under test."""
    return {"SYNCER_RESTIC": RESTIC} if RESTIC != "restic" else {}


def restic_under_test():
    """Return "restic X.Y.Z" of the restic under test, or why it cannot be told."""
    try:
        done = subprocess.run([require_tool("restic"), "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"restic ({error})"
    return " ".join(done.stdout.split()[:2]) or "restic (unknown version)"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    @property
    def output(self):
        return self.stdout + self.stderr


def run_syncer(*arguments, policies=None, state=None, env=None, timeout=300, cwd=None, input=None):
    """Run `python -m syncer` as a user would; return its exit code and output. `input`
    is its standard input (never a terminal)."""
    command = [sys.executable, "-m", "syncer"]
    if policies is not None:
        command += ["--policies", str(policies)]
    if state is not None:
        command += ["--state-dir", str(state)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
    environment.update(restic_setting())
    environment.update(env or {})
    done = subprocess.run(command + [str(a) for a in arguments], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=cwd, input=input or "")
    return Result(done.returncode, done.stdout, done.stderr)


def write_policy(directory, name, document):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return path


def write_tree(root, files):
    """Create files {relative path: bytes or str} below `root`."""
    root = Path(root)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def write_secret(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, seconds=30, process=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


def require_tool(name):
    """Return the path of `name`; fail (never skip) naming the tool when it is missing.
    "restic" is the restic under test."""
    if name == "restic" and RESTIC != "restic":
        if not os.access(RESTIC, os.X_OK):
            raise AssertionError(f"TEST_RESTIC={RESTIC} is not an executable restic (`make restic-0.18` fetches it)")
        return RESTIC
    path = shutil.which(name) or (shutil.which(name, path=str(Path(sys.executable).parent)))
    if not path:
        raise AssertionError(f"this test needs `{name}` on PATH; `make test` installs it")
    return path


@dataclass
class S3Server:
    url: str
    access_key: str
    secret_key: str
    process: subprocess.Popen

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def env(self):
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def credentials_text(self):
        return f"AWS_ACCESS_KEY_ID={self.access_key}\nAWS_SECRET_ACCESS_KEY={self.secret_key}\n"


def start_s3_server():
    """Start moto's standalone S3 server on 127.0.0.1 (a real HTTP S3 endpoint)."""
    server = require_tool("moto_server")
    port = free_port()
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_port(port, process=process)
    return S3Server(f"http://127.0.0.1:{port}", "testing-access-key", "testing-secret-key-0123", process)


def group_members(group):
    """PIDs of the live processes in process group `group` (a zombie holds nothing any more)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state ppid pgrp ...
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def run_demo(root):
    """Run a copy of the checkout's demo in the folder `root` (as `make demo` does, with
    none of the caller's SYNCER_* settings); fail on a non-zero exit. Return its stdout."""
    require_tool("restic")
    root = Path(root)
    (root / "demo").mkdir()
    (root / "policies").mkdir()
    shutil.copy(REPO / "demo" / "run_demo.py", root / "demo")
    shutil.copy(REPO / "policies" / "demo.yaml", root / "policies")
    done = subprocess.run([sys.executable, "demo/run_demo.py"], cwd=root, env=demo_environment(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def demo_environment():
    """The environment the demo, and the commands it prints, run in: no SYNCER_* setting."""
    return {key: value for key, value in os.environ.items() if not key.startswith("SYNCER_")}


class CountedListing:
    """An authority's listing of `count` entries, in memory, that counts how many of the
    entries it listed are still alive: a caller that holds the listing keeps them all."""

    def __init__(self, count):
        from syncer.endpoints.base import Capabilities

        self.capabilities = Capabilities(checksum="sha256")
        self.count = count
        self.alive = self.most_alive = 0

    def describe(self):
        return "counted listing"

    def entry(self, number):
        from syncer.endpoints.base import Entry

        return Entry(f"d/{number:05d}", number, f"{number:064x}", "sha256", ref={"key": number})

    def forget(self):
        self.alive -= 1

    def list_entries(self):
        for number in range(self.count):
            entry = self.entry(number)
            self.alive += 1
            weakref.finalize(entry, self.forget)
            self.most_alive = max(self.most_alive, self.alive)
            yield entry
