"""Check that the locked set installs on the board (aarch64 Debian 12, CPython 3.11):
download every file of requirements.lock for that platform, wheels only, hashes
checked. A package that ships no wheel at all must be named in PURE_PYTHON_SDISTS and
its sdist must hold no compiled-extension source. Exit 0, or 1 naming what fails.

    python packaging/check_wheels.py [requirements.lock]
"""

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_36_aarch64")  # Debian 12 has glibc 2.36
PYTHON_VERSION = "3.11"
PURE_PYTHON_SDISTS = ("sdnotify",)  # pure Python, published as an sdist only
COMPILED_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".rs", ".f", ".f90", ".cu")


def names_in(archive):
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as opened:
            return opened.namelist()
    with tarfile.open(archive) as opened:
        return opened.getnames()


def main(lock="requirements.lock"):
    with tempfile.TemporaryDirectory(prefix="syncer-wheels-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                   "--python-version", PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:",
                   f"--no-binary={','.join(PURE_PYTHON_SDISTS)}", "--require-hashes", "-r", lock, "-d", folder]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"check_wheels: the locked set does not download for aarch64 / CPython {PYTHON_VERSION}:\n"
                  f"{done.stderr.strip()}", file=sys.stderr)
            return 1
        files = sorted(Path(folder).iterdir())
        problems = []
        for path in files:
            if path.suffix == ".whl":
                continue
            compiled = [name for name in names_in(path) if name.lower().endswith(COMPILED_SOURCES)]
            if compiled:
                problems.append(f"{path.name}: an sdist with compiled sources ({', '.join(compiled[:3])})")
        wheels = sum(1 for path in files if path.suffix == ".whl")
        if problems:
            print("check_wheels: " + "\n".join(problems), file=sys.stderr)
            return 1
        print(f"check_wheels: {wheels} wheels and {len(files) - wheels} pure-Python sdists install on "
              f"aarch64 CPython {PYTHON_VERSION}")
        return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
