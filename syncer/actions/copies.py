"""Copies (3-2-1): after a push, the dataset's snapshots go to each repository of
offsite.copies with `restic copy`, and the copy's newest snapshot is checked to hold
the manifest just pushed. A copy that fails is a finding of the push, never undone
into it: the main repository keeps the snapshot.
"""

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from syncer.actions.offsite import MANIFEST_NAME, dataset_snapshots, snapshot_layout
from syncer.errors import OperationalError, SyncerError, UsageError
from syncer.restic import argv as build
from syncer.restic.repository import ResticRepository, repository_context
from syncer.restic.runner import RepositoryMissing, supports

log = logging.getLogger("syncer.copies")


def copy_policy(policy, choice):
    """Return `policy` reading from one of its copies instead of its main repository:
    `choice` is the copy's number (1 for the first of offsite.copies) or its
    repository address; None or 0 is the main repository. Raise UsageError for a copy
    the policy does not have."""
    if choice in (None, "", "0"):
        return policy
    copies = policy.offsite.copies if policy.offsite else []
    found = None
    if str(choice).isdigit():
        found = copies[int(choice) - 1] if int(choice) <= len(copies) else None
    else:
        found = next((copy for copy in copies if copy.repository == choice), None)
    if found is None:
        listed = ", ".join(f"{number} ({copy.repository})" for number, copy in enumerate(copies, 1)) or "none"
        raise UsageError(f"--from {choice}: dataset {policy.name} has no such copy in {policy.file_label} "
                         f"(its offsite.copies: {listed})")
    offsite = policy.offsite.model_copy(update={"repository": found.repository, "password_file": found.password_file,
                                                "env_file": found.env_file, "copies": []})
    chosen = policy.model_copy(update={"offsite": offsite})
    chosen._source, chosen._credential_names = policy.source, policy.credential_names
    chosen._restic = policy.restic_binary
    return chosen


def copy_repository(policy, copy, main, state_dir):
    """The copy's ResticRepository, with the main repository named as the source of
    `restic copy` in its environment. restic reads one set of backend keys (AWS_*) for
    both: the copy's env_file values win where both name one."""
    context = repository_context(copy.repository, copy.password_file, copy.env_file, state_dir,
                                 f"{policy.file_label}: offsite.copies[{copy.repository}]",
                                 binary=main.context.binary)
    source = build.copy_source_environment(main.context.repository, main.context.password_file,
                                           supports("copy_from_repo", context.binary))
    return ResticRepository(dataclasses.replace(context, env={**main.context.env, **context.env, **source}))


def copy_to_copies(policy, db, main, manifest, tag, host, init=False, prune=False, forget=True):
    """Copy the dataset's snapshots from `main` to each of its copies and check that
    each copy's newest snapshot holds `manifest` (the file just pushed). Each copy
    forgets what offsite.retention forgets when `forget` (the main repository's retention
    ran: offsite.forget), and is pruned with `prune` (when the main repository was). Return one
    row per copy: {"repository", "ok", "snapshot", "snapshot_time", "seconds"} or,
    when it failed, {"repository", "ok": False, "error"}."""
    rows = []
    for copy in policy.offsite.copies:
        started = time.monotonic()
        repository = None
        try:
            repository = copy_repository(policy, copy, main, db.state_dir)
            row = copy_dataset(policy, db, repository, manifest, tag, host, init, prune, forget)
        except SyncerError as error:
            address = repository.context.display if repository else copy.repository
            log.error("%s: copy to %s failed (the push itself stands): %s", policy.name, address, error)
            row = {"repository": address, "ok": False, "error": str(error)}
        rows.append(dict(row, seconds=round(time.monotonic() - started, 3)))
    return rows


def copy_dataset(policy, db, repository, manifest, tag, host, init, prune=False, forget=True):
    address = repository.context.display
    log.info("%s: restic copy to %s", policy.name, address)
    try:
        repository.run(build.copy_argv(tag, host))
    except RepositoryMissing as missing:
        create_copy(repository, policy, db, init, missing)
        repository.run(build.copy_argv(tag, host))
    db.record_push(address)
    if policy.offsite.retention and forget:  # the copy keeps what the main repository keeps
        _, removed = repository.forget(tag, host, policy.offsite.retention)
        if prune and removed:
            log.info("%s: pruning copy %s (the main repository was pruned)", policy.name, address)
            repository.prune()
    newest = dataset_snapshots(repository, policy)[-1:]
    if not newest:
        raise OperationalError(f"copy {address} holds no snapshot of {policy.name} after restic copy")
    _, inside = snapshot_layout(newest[0], policy.name)
    with tempfile.TemporaryDirectory(prefix="syncer-copy-") as folder:
        copied = Path(folder) / MANIFEST_NAME
        repository.dump(newest[0]["id"], inside, copied)
        if copied.read_bytes() != Path(manifest).read_bytes():
            raise OperationalError(f"the newest snapshot of {policy.name} in copy {address} ({newest[0]['short_id']}) "
                              f"does not hold the manifest just pushed")
    log.info("%s: copy %s holds snapshot %s with the same manifest", policy.name, address, newest[0]["short_id"])
    return {"repository": address, "ok": True, "snapshot": newest[0]["id"],
            "snapshot_time": newest[0].get("time")}


def create_copy(repository, policy, db, init, missing):
    """Create a missing copy repository with the main one's chunker parameters, unless
    syncer copied to it before (a disk not mounted must not become a new, empty copy)."""
    address = repository.context.display
    if db.first_push(address) and not init:
        raise type(missing)(f"copy repository {address} is missing or not mounted (syncer copied to it before); "
                            f"it is not created again. Mount it, or if it is lost for good, "
                            f"`syncer push --init {policy.name}` starts a new one", missing.exit_status)
    log.warning("%s: copy repository %s does not exist yet: creating it with the main repository's chunker "
                "parameters (restic init --copy-chunker-params)", policy.name, address)
    repository.run(build.init_copy_argv())
