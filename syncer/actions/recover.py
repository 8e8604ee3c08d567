"""recover: rebuild a board from its offsite repositories alone.

Every snapshot push makes carries the dataset's manifest and, in policy/ beside it,
the policy file as written and syncer.yaml. recover finds the datasets (tags
syncer:*), puts their policies back, and restores each dataset through restore's own
staging and manifest check (syncer.actions.restore.restore_snapshot). A dataset done
and checked is recorded in the state database, so a recover run again after an
interruption skips it.
"""

import logging
import shutil
import tempfile
import time
from pathlib import Path

from syncer.actions.common import for_each_dataset, recorded_run
from syncer.actions.drill import PROJECTION_DRILLS, estimate_restore, project_restore, recent_drills
from syncer.actions.offsite import MANIFEST_NAME, POLICY_FOLDER, iterate_manifest, snapshot_layout
from syncer.actions.restore import is_non_empty, restore_snapshot
from syncer.errors import EXIT_OK, OperationalError, SyncerError, UsageError, exit_code_of
from syncer.fsio import write_file
from syncer.log import plural
from syncer.policy.load import GLOBAL_FILE_NAMES, load_policy_file, restic_binary
from syncer.policy.model import GlobalSettings, Policy
from syncer.restic.repository import ResticRepository, repository_context

log = logging.getLogger("syncer.recover")
TAG_PREFIX = "syncer:"
POLICY_LIMIT = 1 << 20  # a policy file is far smaller: anything bigger is not one
SAMPLE_LIMIT = 16 << 20  # the largest file --dry-run times when no drill was recorded


def open_repositories(sources, env_file, state_dir):
    """Return a ResticRepository per (address, password file) of `sources`, all with the
    same env file. Raise UsageError/OperationalError for a missing or too open file."""
    binary = restic_binary(GlobalSettings())  # a fresh machine has no syncer.yaml yet: SYNCER_RESTIC or PATH's
    return [ResticRepository(repository_context(address, password_file, env_file, state_dir, f"--repository {address}",
                                                "--password-file", binary=binary))
            for address, password_file in sources]


def find_datasets(repositories):
    """Return {dataset: (repository, newest snapshot)} over every repository: the
    newest snapshot of each syncer:* tag wins (on a tie, a copy keeping its
    original's time, the repository given first). Raise ResticError when a repository
    cannot be opened (wrong password, missing, unreachable)."""
    found = {}
    for repository in repositories:
        for snapshot in repository.snapshots():
            names = [tag[len(TAG_PREFIX):] for tag in snapshot.get("tags") or () if tag.startswith(TAG_PREFIX)]
            for name in names:
                if name not in found or snapshot.get("time", "") > found[name][1].get("time", ""):
                    found[name] = (repository, snapshot)
    return found


def choose_datasets(found, names):
    """Return the sorted dataset names to recover: `names`, or all. Raise UsageError
    naming the ones no repository holds."""
    unknown = sorted(set(names) - set(found))
    if unknown:
        held = ", ".join(sorted(found)) or "none"
        raise UsageError(f"no repository holds dataset {', '.join(unknown)} (they hold: {held})")
    return sorted(set(names) or found)


def under_root(path, root):
    """`path` (absolute) moved below `root` when one is given."""
    path = Path(path)
    return Path(root).absolute() / path.relative_to(path.anchor) if root else path


def restore_policy_for(name, repository, snapshot, target, policy_file, env_file):
    """The policy restore_snapshot works from: the dataset's name and restic host, the
    repository it was found in with recover's own password, and `target` as its path."""
    offsite = {"repository": repository.context.repository, "password_file": str(repository.context.password_file),
               "host": snapshot.get("hostname") or name}
    if env_file:
        offsite["env_file"] = str(env_file)
    policy = Policy.model_validate({"name": name, "path": str(target), "authority": {"type": "local",
                                    "path": str(target)}, "offsite": offsite})
    policy._source = policy_file
    policy._restic = repository.context.binary
    return policy


def age_seconds(snapshot, now=None):
    from datetime import datetime

    taken = datetime.fromisoformat(snapshot["time"][:26].rstrip("Z") + "+00:00")
    return max(0.0, (now or time.time()) - taken.timestamp())


def describe_dataset(name, repository, snapshot, workspace, root):
    """Read the dataset's manifest and policy copy from `snapshot`. Return the plan
    {name, repository, snapshot, target, files, bytes, age_seconds, policy_files,
    manifest_seconds, largest}."""
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workspace))
    data_root, manifest = snapshot_layout(snapshot, name)
    started = time.monotonic()
    # one restic run reads the manifest and the policy copy beside it
    repository.dump_folder(snapshot["id"], manifest.rsplit("/", 1)[0], folder)
    manifest_seconds = time.monotonic() - started
    manifest_size = (folder / MANIFEST_NAME).stat().st_size if (folder / MANIFEST_NAME).is_file() else 0
    files, total, sample = 0, 0, None  # the manifest streamed: a million entries would not fit a small board
    for entry in iterate_manifest(folder / MANIFEST_NAME):
        size = entry.get("size") or 0
        files, total = files + 1, total + size
        if size <= SAMPLE_LIMIT and (sample is None or size > (sample.get("size") or 0)):
            sample = entry
    policy_files = {path.name: path.read_bytes() for path in (folder / POLICY_FOLDER).glob("*")
                    if path.is_file() and path.stat().st_size <= POLICY_LIMIT}
    shutil.rmtree(folder, ignore_errors=True)
    if not [file for file in policy_files if file not in GLOBAL_FILE_NAMES]:
        raise OperationalError(f"snapshot {snapshot['short_id']} of {name} holds no policy file (pushed by a syncer "
                               f"before recover existed); restore it with a policy: syncer restore {name} --to DIR")
    return {"name": name, "repository": repository.context.display, "snapshot": snapshot["id"], "listed": snapshot,
            "target": str(under_root(data_root, root)), "source_path": data_root, "files": files,
            "bytes": total, "age_seconds": round(age_seconds(snapshot)), "policy_files": policy_files,
            "manifest_run": (manifest_seconds, manifest_size),
            "sample": sample and f"{data_root.rstrip('/')}/{sample['path']}", "sample_bytes": sample and sample["size"]}


def place_policies(plan, policies_dir, force):
    """Write the dataset's policy file into `policies_dir`. A file already there with
    other content is kept unless `force`. Return the policy file's path. Raise
    UsageError for a conflict."""
    written = None
    for name, content in sorted(plan["policy_files"].items()):
        if name in GLOBAL_FILE_NAMES:
            continue
        written = put_file(policies_dir, name, content, force)
    return written


def put_file(folder, name, content, force):
    """Write `content` as folder/name unless the file holds it already. Raise UsageError
    when it holds something else and `force` is not given."""
    path = Path(folder) / name
    if path.is_file() and path.read_bytes() == content:
        return path
    if path.exists() and not force:
        raise UsageError(f"{path} exists and differs from the policy in the snapshot; it is kept (use --force "
                         f"to replace it)")
    Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file(folder, name, lambda: _bytes_stream(content), mode=0o600)
    return path


def _bytes_stream(content):
    import io

    return io.BytesIO(content)


def place_global_settings(plans, policies_dir, force):
    """Write syncer.yaml from the newest snapshot that carries one. Return its path, or None."""
    carrying = [plan for plan in plans if any(name in GLOBAL_FILE_NAMES for name in plan["policy_files"])]
    if not carrying:
        return None
    newest = min(carrying, key=lambda plan: plan["age_seconds"])
    name = next(name for name in newest["policy_files"] if name in GLOBAL_FILE_NAMES)
    return put_file(policies_dir, name, newest["policy_files"][name], force)


def missing_credentials(policy_files):
    """Return the credentials files the recovered policies name that are not on this
    machine, as sorted paths."""
    missing = set()
    for path in policy_files:
        policy, problems = load_policy_file(path, check_paths=False)
        if policy is None:
            log.warning("%s: the recovered policy does not load here: %s", path.name, "; ".join(problems))
            continue
        named = [getattr(policy.authority, "credentials", None)]
        if policy.offsite:
            named += [policy.offsite.password_file, policy.offsite.env_file]
            named += [name for copy in policy.offsite.copies for name in (copy.password_file, copy.env_file)]
        missing |= {str(name) for name in named if name and not Path(name).exists()}
    return sorted(missing)


def next_steps(missing, policies_dir):
    folder = f"--policies {policies_dir} "
    steps = [f"put the credentials files in place (mode 600): {', '.join(missing)}"] if missing else []
    return steps + [f"syncer {folder}doctor", f"syncer {folder}systemd install"]


def recover_dataset(plan, policy, db, force, policies_dir):
    """Put one dataset's policy and data back. Return its report row; a dataset done
    and checked by an earlier recover (same snapshot, same target) is skipped."""
    target = Path(plan["target"])
    row = {key: plan[key] for key in ("name", "repository", "snapshot", "target", "files", "bytes")}
    policy_file = place_policies(plan, policies_dir, force)
    done = db.last_run(plan["name"], "recover", "ok")
    summary = (done or {}).get("summary") or {}
    if (summary.get("snapshot"), summary.get("target")) == (plan["snapshot"], plan["target"]) \
            and is_non_empty(target):
        log.info("%s: already recovered and checked into %s (snapshot %s): skipped", plan["name"], target,
                 plan["snapshot"][:8])
        return dict(row, seconds=0.0, throughput_mib_s=None, passed=True, skipped=True, policy=str(policy_file),
                    exit_code=EXIT_OK)
    with recorded_run(db, plan["name"], "recover") as outcome:
        started = time.monotonic()
        restored = restore_snapshot(policy, db, target, plan["listed"], force=force)
        seconds = time.monotonic() - started
        passed = restored["exit_code"] == EXIT_OK
        outcome.update(row, seconds=round(seconds, 3), passed=passed, skipped=False, policy=str(policy_file),
                       throughput_mib_s=round(plan["bytes"] / seconds / 2**20, 2) if seconds else None,
                       files_checked=restored.get("files_checked"), exit_code=restored["exit_code"])
        if not passed:
            outcome["error"] = restored.get("error")
    return dict(outcome)


def run_recover(sources, env_file, db, policies_dir, names=(), root=None, force=False):
    """Recover the datasets `names` (all when empty) from the repositories of `sources`
    ((address, password file) pairs) onto this machine. Return the report {"datasets",
    "rto_seconds", "missing_credentials", "next_steps"}; each row's exit_code is 1 when
    a file failed its check, 2 for a refused target or policy, 3 when its snapshot could
    not be read. Raise ResticError (exit 3) when a repository cannot be opened."""
    started = time.monotonic()
    policies_dir = under_root(Path(policies_dir).absolute(), root)
    repositories = open_repositories(sources, env_file, db.state_dir)
    found = find_datasets(repositories)
    chosen = choose_datasets(found, names)
    log.info("recover: %s in %s: %s", plural(len(found), "dataset"), ", ".join(address for address, _ in sources),
             ", ".join(sorted(found)))
    plans, unreadable = [], []
    with tempfile.TemporaryDirectory(prefix="syncer-recover-") as workspace:
        for name in chosen:
            try:
                plans.append(describe_dataset(name, *found[name], workspace, root))
            except SyncerError as error:  # that dataset alone: the others are recovered
                log.error("%s: %s", name, error)
                unreadable.append({"name": name, "repository": found[name][0].context.display,
                                   "snapshot": found[name][1]["id"], "target": None, "files": None, "bytes": None,
                                   "seconds": None, "passed": False, "error": str(error),
                                   "exit_code": exit_code_of(error)})
    try:
        place_global_settings(plans, policies_dir, force)
    except UsageError as error:  # not a dataset's: each policy still names its credentials
        log.warning("%s", error)
    policies = []
    for plan in plans:
        repository = next(each for each in repositories if each.context.display == plan["repository"])
        policy_name = next(name for name in plan["policy_files"] if name not in GLOBAL_FILE_NAMES)
        policies.append(restore_policy_for(plan["name"], repository, found[plan["name"]][1], plan["target"],
                                           policies_dir / policy_name, env_file))
    by_name = {plan["name"]: plan for plan in plans}
    report = for_each_dataset(policies, lambda policy: recover_dataset(by_name[policy.name], policy, db, force,
                                                                       policies_dir))
    for row in report["datasets"]:
        if "error" in row and "passed" not in row:  # refused before restoring: a row like the others
            plan = by_name[row["name"]]
            row.update({key: plan[key] for key in ("repository", "snapshot", "target", "files", "bytes")},
                       seconds=None, passed=False)
    report["datasets"] = sorted(report["datasets"] + unreadable, key=lambda row: row["name"])
    recovered = [policies_dir / policy.file_label for policy in policies if (policies_dir / policy.file_label).exists()]
    missing = missing_credentials(recovered)
    report.update(rto_seconds=round(time.monotonic() - started, 1), missing_credentials=missing,
                  next_steps=next_steps(missing, policies_dir), policies_dir=str(policies_dir))
    return report


def plan_recover(sources, env_file, state_dir, names=(), root=None, policies_dir=None):
    """The --dry-run of run_recover: what would be restored and where, with sizes and
    a projected time (from the drills recorded in the state database at `state_dir`
    when it has them, else from a timed sample), the RTO counting the reading of the
    repositories recover does first. Writes nothing: restic's cache and the sample go
    to a temporary folder, removed after."""
    started = time.monotonic()
    db = read_only_database(Path(state_dir) / "state.db")
    with tempfile.TemporaryDirectory(prefix="syncer-recover-plan-") as workspace:
        repositories = open_repositories(sources, env_file, workspace)
        found = find_datasets(repositories)
        rows, reading = [], time.monotonic() - started
        for name in choose_datasets(found, names):
            repository, snapshot = found[name]
            described = time.monotonic()
            try:
                plan = describe_dataset(name, repository, snapshot, workspace, root)
            except SyncerError as error:  # that dataset alone: the others are listed
                log.error("%s: %s", name, error)
                rows.append({"name": name, "repository": repository.context.display, "snapshot": snapshot["id"],
                             "error": str(error), "exit_code": exit_code_of(error)})
                continue
            reading += time.monotonic() - described  # recover reads the same before restoring
            projection, basis = project(plan, repository, db, workspace)
            # restore itself reads the manifest again: one more restic start-up
            projection = projection and round(projection + plan["manifest_run"][0], 1)
            policy_name = next(file for file in plan["policy_files"] if file not in GLOBAL_FILE_NAMES)
            policy_path = under_root(Path(policies_dir).absolute(), root) / policy_name
            rows.append({"name": name, "repository": plan["repository"], "snapshot": plan["snapshot"],
                         "target": plan["target"], "files": plan["files"], "bytes": plan["bytes"],
                         "age_seconds": plan["age_seconds"], "policy": str(policy_path),
                         "policy_exists": policy_path.exists(), "target_non_empty": is_non_empty(Path(plan["target"])),
                         "projected_seconds": projection, "projection_basis": basis, "exit_code": EXIT_OK})
    projected = [row["projected_seconds"] for row in rows if row.get("projected_seconds") is not None]
    return {"dry_run": True, "datasets": rows,
            "projected_rto_seconds": round(reading + sum(projected), 1) if projected else None,
            "seconds": round(time.monotonic() - started, 1)}


def read_only_database(path):
    """The state database at `path` opened read-only (a dry run writes nothing, not even
    its journal), or None when there is none that opens."""
    import sqlite3
    from urllib.parse import quote

    if not path.is_file():
        return None
    try:
        # immutable: not even the -shm/-wal files a read-only open of a WAL database creates
        connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro&immutable=1", uri=True)
        connection.execute("SELECT 1 FROM runs LIMIT 1")
        return connection
    except sqlite3.Error as error:
        log.info("recover --dry-run: the state database %s cannot be read (%s): projecting from a timed sample",
                 path, error)
        return None


def project(plan, repository, db, workspace):
    """Return (projected restore seconds, basis): from the dataset's recorded drills, or
    from restoring its largest file (up to SAMPLE_LIMIT) into `workspace`, timed."""
    earlier = recent_drills(db, plan["name"], PROJECTION_DRILLS) if db else []
    if earlier:
        projection = project_restore(None, earlier, plan["bytes"])
        return projection["projected_restore_seconds"], f"{plural(projection['projection_drills'], 'drill')}"
    if not plan["sample"]:
        return 0.0, "empty dataset"
    destination = Path(workspace) / "sample"
    started = time.monotonic()
    repository.dump(plan["snapshot"], plan["sample"], destination)
    seconds = time.monotonic() - started
    destination.unlink()
    _, _, projected = estimate_restore(seconds, plan["sample_bytes"], plan["bytes"], plan["manifest_run"])
    if projected is None:  # an empty sample file: restic's start-up is all there is to time
        projected = seconds
    return round(projected, 1), f"timed sample of {plan['sample_bytes']} bytes"
