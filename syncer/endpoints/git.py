"""The one place that runs git (through the process door, syncer.process), for the
GitLab endpoint's bare mirrors.

A token reaches git only through the environment of each command
(GIT_CONFIG_COUNT/KEY/VALUE, git >= 2.31), as an `http.<url>.extraHeader` scoped to
the GitLab URL: never in argv (any local user can read it), never in `.git/config`,
never in a log line. Argv is built by pure functions that tests can assert on.
"""

import base64
import hashlib
import logging
import os

from syncer.errors import EndpointError
from syncer.log import mask
from syncer.process import TimedOut, run_process

log = logging.getLogger("syncer.git")
GIT_TIMEOUT_SECONDS = 3600
REF_PREFIXES = ("refs/heads/", "refs/tags/")


def auth_environment(base_url, token):
    """Return the environment entries that give git the token for `base_url` only."""
    if not token:
        return {}
    basic = base64.b64encode(f"oauth2:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{base_url.rstrip('/')}/.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}


def clone_mirror_argv(url, target):
    return ["git", "clone", "--mirror", "--quiet", "--", url, str(target)]


def update_mirror_argv(path):
    return ["git", "-C", str(path), "remote", "update", "--prune"]


def set_origin_argv(path, url):
    return ["git", "-C", str(path), "config", "remote.origin.url", url]


def list_refs_argv(path):
    return ["git", "-C", str(path), "for-each-ref", "--format=%(refname) %(objectname)", *REF_PREFIXES]


def fsck_argv(path):
    return ["git", "-C", str(path), "fsck", "--no-progress"]


def push_refs_argv(path, url):
    """Push branches and tags only: `--mirror` would also push hidden refs
    (refs/merge-requests/*), which GitLab rejects. Not forced: a branch that moved on
    upstream is refused by git and reported, never overwritten by a restore."""
    return ["git", "-C", str(path), "push", "--porcelain", "--", url, "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*"]


def run_git(argv, auth=None, where="git"):
    """Run one git command through the process door; return its stdout. Raise
    EndpointError with git's first error line (masked) if it fails, permanent when git
    says authentication failed or the repository does not exist."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GIT_CONFIG_")}
    environment.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "LC_ALL": "C"})
    environment.update(auth or {})
    output, errors = [], []

    def take_error(line):
        errors.append(line)
        if line.strip():
            log.debug("git: %s", mask(line.rstrip()))

    try:
        exit_status = run_process(argv, on_output=output.append, on_errors=take_error, environment=environment,
                                  timeout=GIT_TIMEOUT_SECONDS, logger=log)
    except FileNotFoundError:
        raise EndpointError("git is not installed (apt-get install -y git)", permanent=True)
    except TimedOut:
        raise EndpointError(f"{where}: git {argv[3] if argv[1] == '-C' else argv[1]} timed out")
    if exit_status:
        stderr = "".join(errors)
        lines = [line for line in stderr.splitlines() if line.strip()]
        detail = mask(next((line for line in lines if "fatal" in line or "error" in line), lines[-1] if lines else ""))
        lowered = stderr.lower()
        permanent = any(text in lowered for text in ("authentication failed", "not found", "access denied",
                                                      "could not read username", "403"))
        raise EndpointError(f"{where}: {detail.strip() or f'git exited with {exit_status}'}", permanent=permanent)
    return "".join(output)


def local_refs(path):
    """Return {refname: sha} of the branches and tags of the repository at `path`."""
    output = run_git(list_refs_argv(path), where=str(path))
    refs = {}
    for line in output.splitlines():
        name, _, sha = line.partition(" ")
        refs[name] = sha
    return refs


def fsck_problem(path):
    """Return what `git fsck` finds wrong with the repository at `path`, or None."""
    try:
        run_git(fsck_argv(path), where=str(path))
    except EndpointError as error:
        return str(error).partition(": ")[2] or str(error)
    return None


def refs_digest(refs):
    """A SHA-256 over the sorted (ref, sha) pairs: equal digests mean equal branches and tags."""
    text = "".join(f"{name} {sha}\n" for name, sha in sorted(refs.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def describe_ref_differences(local, remote, limit=3):
    """Return a short text naming the refs that differ between `local` and `remote`."""
    differences = []
    for name in sorted(set(local) | set(remote)):
        here, there = local.get(name), remote.get(name)
        if here == there:
            continue
        short = name.replace("refs/heads/", "branch ").replace("refs/tags/", "tag ")
        if here is None:
            differences.append(f"{short} missing here")
        elif there is None:
            differences.append(f"{short} not on GitLab")
        else:
            differences.append(f"{short} {here[:9]} here, {there[:9]} on GitLab")
    more = f" and {len(differences) - limit} more" if len(differences) > limit else ""
    return "; ".join(differences[:limit]) + more


def find_mirrors(root, skipped=None):
    """Yield the paths (relative, '/'-separated) of the bare repositories `*.git` below
    `root`. With `skipped` (a list), add to it the paths of the `.syncer-*` folders met
    on the way and not entered: clones under way, or what interrupted ones left."""
    for directory, subdirectories, _files in os.walk(root):
        subdirectories.sort()
        for name in list(subdirectories):
            if name.endswith(".git"):
                absolute = os.path.join(directory, name)
                if os.path.isfile(os.path.join(absolute, "HEAD")) and os.path.isdir(os.path.join(absolute, "objects")):
                    subdirectories.remove(name)
                    yield os.path.relpath(absolute, root).replace(os.sep, "/")
            elif name.startswith(".syncer-"):
                subdirectories.remove(name)  # a clone under way or interrupted, never a mirror
                if skipped is not None:
                    skipped.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
