"""Offsite commands: push, snapshots, check, restore, drill, audit-offsite."""

import sys
import time
from contextlib import contextmanager

import click

from syncer.cli.common import global_options, json_option, settings
from syncer.cli.group import cli
from syncer.cli.render import console, human_bytes, print_json, safe_name, safe_text
from syncer.log import plural


@cli.command()
@global_options
@click.argument("datasets", nargs=-1)
@click.option("--init", is_flag=True,
              help="Create a missing repository (restic init), even one syncer pushed to before.")
@json_option
def push(datasets, init, as_json):
    """Back datasets up to their offsite restic repository, then apply retention.

    A missing repository is created only on the first push to it, or with --init."""
    from syncer.actions.push import run_push

    current = settings()
    policies = [policy for policy in current.policies(datasets) if policy.offsite or datasets]
    if not policies:
        from syncer.errors import UsageError

        raise UsageError("no policy has an offsite section: nothing to push")
    with push_progress(not as_json) as progress:
        report = run_push(policies, current.db(), progress=progress, init=init)
    print_json(report) if as_json else render_push(report)
    return report["datasets"]


@cli.command()
@global_options
@click.argument("dataset", required=False)
@json_option
def snapshots(dataset, as_json):
    """List a dataset's snapshots in its offsite repository."""
    from syncer.actions.snapshots import run_snapshots

    current = settings()
    report = run_snapshots(offsite_policies(current, dataset), current.db())
    print_json(report) if as_json else render_snapshots(report)
    return report["datasets"]


@cli.command()
@global_options
@click.argument("dataset", required=False)
@click.option("--read-data-subset", metavar="SUBSET", help="Also read this part of the data: 5%, 1/10 or 500M.")
@json_option
def check(dataset, read_data_subset, as_json):
    """Check the offsite repository's integrity (restic check)."""
    from syncer.actions.snapshots import run_check
    from syncer.policy.model import SUBSET_PATTERN

    if read_data_subset and not SUBSET_PATTERN.match(read_data_subset):
        raise click.BadParameter("must look like 5%, 1/10 or 500M", param_hint="--read-data-subset")
    current = settings()
    report = run_check(offsite_policies(current, dataset), current.db(), read_data_subset)
    if as_json:
        print_json(report)
    else:
        for row in report["datasets"]:
            if not row.get("error"):  # an error was logged once, on stderr
                click.echo(f"{row['name']}: {row['repository']}: {'ok' if row['ok'] else 'ERRORS FOUND'}")
    return report["datasets"]


@cli.command()
@global_options
@click.argument("dataset")
@click.option("--to", "target", required=True, type=click.Path(file_okay=False),
              help="Where to restore: a directory, `cloud` (the authority) or s3://BUCKET/PREFIX.")
@click.option("--snapshot", default="latest", show_default=True, help="Snapshot ID (or a prefix of one).")
@click.option("--from", "source", metavar="N|REPO",
              help="Read from a copy: its number in offsite.copies (1 is the first) or its repository.")
@click.option("--include", "includes", multiple=True, metavar="GLOB",
              help="Only restore paths matching this glob, relative to the dataset (repeatable).")
@click.option("--force", is_flag=True, help="Replace a non-empty target.")
@click.option("--in-place", is_flag=True, help="Only write files missing or damaged in the target.")
@click.option("--dry-run", is_flag=True, help="With --to cloud|s3://...: show what would be uploaded.")
@click.option("--credentials", "credentials_file", type=click.Path(dir_okay=False),
              help="With --to s3://...: a KEY=VALUE file (mode 600) with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.")
@click.option("--endpoint-url", help="With --to s3://...: an S3-compatible server's URL.")
@click.option("--delete", is_flag=True,
              help="With --to cloud for DNS zones: also delete the records only the zone upstream holds.")
@json_option
def restore(dataset, target, snapshot, source, includes, force, in_place, dry_run, credentials_file, endpoint_url,
            delete, as_json):
    """Restore a dataset from its offsite repository to a path, checked against the manifest.

    `--to cloud` puts it back into the dataset's authority, `--to s3://BUCKET/PREFIX`
    into any S3-compatible bucket: only what is missing or differs is uploaded."""
    from syncer.actions.copies import copy_policy
    from syncer.actions.restore import run_restore

    current = settings()
    (policy,) = offsite_policies(current, dataset)
    policy = copy_policy(policy, source)
    if target == "cloud" or target.startswith("s3://"):
        from syncer.cli.cloud import restore_to_cloud

        return restore_to_cloud(current, policy, target, snapshot, includes, dry_run, credentials_file,
                                endpoint_url, as_json, delete)
    report = run_restore(policy, current.db(), target, snapshot, includes, force, in_place)
    if as_json:
        print_json(report)
    elif not report.get("error"):  # a refusal was logged once, on stderr
        replaced = (f" ({report['files_replaced']} replaced; the old copies are kept in "
                    f"{safe_name(report['replaced_kept_in'])})" if report.get("files_replaced") else "")
        click.echo(f"{policy.name}: restored snapshot {report['snapshot'][:8]} to {safe_name(report['target'])} "
                   f"({report['mode']}): {report['files_checked']} files match the manifest, "
                   f"{report['files_written']} written{replaced}")
        for path, reason in report["unverified"][:20]:
            click.echo(f"  unverified {safe_name(path)} ({safe_text(reason)})")
    return [report]


@cli.command()
@global_options
@click.argument("dataset")
@click.option("--sample", metavar="N|PCT|SIZE", help="How much to restore: 20 files, 5%, or 500M (default 16 files).")
@click.option("--full", is_flag=True, help="Restore and check every file.")
@click.option("--from", "source", metavar="N|REPO",
              help="Read from a copy: its number in offsite.copies (1 is the first) or its repository.")
@click.option("--seed", type=int, hidden=True, help="Seed for the random sample (tests).")
@json_option
def drill(dataset, sample, full, source, seed, as_json):
    """Restore a sample (or everything) into a temporary directory and check it."""
    from syncer.actions.drill import run_drill
    from syncer.errors import UsageError

    if sample and full:
        raise UsageError("--sample and --full exclude each other")
    from syncer.actions.copies import copy_policy

    current = settings()
    (policy,) = offsite_policies(current, dataset)
    report = run_drill(copy_policy(policy, source), current.db(), sample=sample, full=full, seed=seed)
    print_json(report) if as_json else render_drill(report)
    return [report]


@cli.command("audit-offsite")
@global_options
@click.argument("dataset", required=False)
@json_option
def audit_offsite(dataset, as_json):
    """Report whether each s3: repository's bucket resists deletion (versioning, object lock, lifecycle)."""
    from syncer.actions.audit import run_audit

    current = settings()
    report = run_audit(offsite_policies(current, dataset))
    print_json(report) if as_json else render_audit(report)
    return report["datasets"]


@cli.command()
@global_options
@click.option("--repository", "repositories", multiple=True, required=True, metavar="REPO",
              help="A restic repository to recover from (repeatable: the newest snapshot of each dataset wins).")
@click.option("--password-file", "password_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="The password file (mode 600): one for every --repository, or one per --repository, in order.")
@click.option("--env-file", type=click.Path(dir_okay=False),
              help="A KEY=VALUE file (mode 600) for restic's backend: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY...")
@click.option("--dataset", "names", multiple=True, metavar="NAME", help="Only this dataset (repeatable).")
@click.option("--root", type=click.Path(file_okay=False),
              help="Put policies and datasets below this folder instead of at their own paths.")
@click.option("--force", is_flag=True, help="Replace policies that differ and datasets that are not empty.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored and where, and how long; write nothing.")
@click.option("--from", "source", metavar="N|REPO",
              help="Read only from this one of the --repository given: its number (1 is the first) or address.")
@json_option
def recover(repositories, password_files, env_file, names, root, force, dry_run, source, as_json):
    """Rebuild this machine from offsite repositories alone: every dataset's policy and data.

    Each dataset is restored through a staging folder and checked against its
    snapshot's manifest before it is moved into place. Run again after an interruption,
    it skips what is done and checked."""
    from syncer.actions.recover import plan_recover, run_recover

    current = settings()
    sources = chosen_repositories(paired_passwords([absolute_repository(address) for address in repositories],
                                                   password_files), source)
    policies_dir = current.policies_dir or recover_policies_dir()
    if dry_run:
        report = plan_recover(sources, env_file, current.resolved_state_dir(), names, root,
                              policies_dir)
        print_json(report) if as_json else render_recover_plan(report)
    else:
        report = run_recover(sources, env_file, current.db(), policies_dir, names, root, force)
        if as_json:
            print_json({key: report[key] for key in ("datasets", "rto_seconds", "missing_credentials",
                                                     "next_steps")})
        else:
            render_recover(report)
    return report["datasets"]


def paired_passwords(addresses, password_files):
    """Return [(address, password file)]: one password file for all, or one each.
    Raise UsageError for any other count."""
    from syncer.errors import UsageError

    if len(password_files) == 1:
        return [(address, password_files[0]) for address in addresses]
    if len(password_files) != len(addresses):
        raise UsageError(f"{len(password_files)} --password-file for {len(addresses)} --repository: give one for "
                         f"all, or one per --repository in the same order")
    return list(zip(addresses, password_files))


def chosen_repositories(sources, source):
    """The (address, password file) pairs recover reads: all of `sources`, or the one
    `source` names (its number, 1 for the first, or its address). Raise UsageError
    for another."""
    from syncer.errors import UsageError

    if not source:
        return sources
    if source.isdigit() and 1 <= int(source) <= len(sources):
        return [sources[int(source) - 1]]
    chosen = [pair for pair in sources if pair[0] == absolute_repository(source)]
    if chosen:
        return chosen[:1]
    listed = ", ".join(f"{number} ({address})" for number, (address, _) in enumerate(sources, 1))
    raise UsageError(f"--from {source}: not one of the --repository given: {listed}")


def absolute_repository(address):
    """A local repository path made absolute (the context may run elsewhere); any
    backend URL (s3:, sftp:, rest:...) kept as given."""
    from pathlib import Path

    if ":" in address.split("/")[0] or address.startswith("/"):
        return address
    return str(Path(address).absolute())


def recover_policies_dir():
    """Where recovered policies go without --policies: /etc/syncer/policies for root,
    else ./policies."""
    import os
    from pathlib import Path

    return Path("/etc/syncer/policies") if os.geteuid() == 0 else Path("policies").absolute()


def offsite_policies(current, dataset=None):
    """The policies with an offsite section (the named one, which must have it).
    Paths on this machine are not checked: these commands work from a laptop."""
    from syncer.errors import UsageError

    policies = current.policies([dataset] if dataset else ())
    if dataset:
        if policies[0].offsite is None:
            raise UsageError(f"dataset {dataset} has no offsite section in {policies[0].file_label}")
        return policies
    chosen = [policy for policy in policies if policy.offsite]
    if not chosen:
        raise UsageError("no policy has an offsite section")
    return chosen


@contextmanager
def push_progress(enabled):
    """Yield progress(dataset, restic status message): a live bar on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  console=Console(stderr=True), transient=True) as bar:
        tasks = {}

        def update(dataset, status):
            if dataset not in tasks:
                tasks[dataset] = bar.add_task(f"{dataset}: restic backup", total=1.0)
            done = status.get("bytes_done") or 0
            bar.update(tasks[dataset], completed=status.get("percent_done") or 0,
                       description=f"{dataset}: {status.get('files_done', 0)} files, {human_bytes(done)}")

        yield update


def render_push(report):
    out = console()
    for row in report["datasets"]:
        if row.get("error"):  # logged once, on stderr
            continue
        out.print(f"[bold]{row['name']}[/bold]: snapshot {row['snapshot'][:8]} in "
                  f"{safe_text(row['repository'], markup=True)}: "
                  f"{row['files_new']} new, {row['files_changed']} changed, {human_bytes(row['bytes_added'])} "
                  f"added in {row['duration'] or 0:.1f}s; retention forgot {row.get('forgotten', 0)}"
                  f"{', pruned' if row.get('pruned') else ''}")
        for copy in row.get("copies", []):
            state = (f"snapshot {copy['snapshot'][:8]} copied and checked" if copy["ok"]
                     else "[red]copy FAILED[/red] (the push stands; see the error above)")
            out.print(f"  copy {safe_text(copy['repository'], markup=True)}: {state} in {copy['seconds']:.1f}s")
        for entry in row["unreadable"][:20]:
            out.print(f"  [yellow]unreadable[/yellow] {safe_text(safe_name(entry['path']), markup=True)} "
                      f"({safe_text(entry['reason'], markup=True)})")


def render_snapshots(report):
    out = console()
    for row in report["datasets"]:
        if row.get("error"):  # logged once, on stderr
            continue
        out.print(f"[bold]{row['name']}[/bold] ({safe_text(row['repository'], markup=True)}, host {row['host']}): "
                  f"{plural(len(row['snapshots']), 'snapshot')}")
        for snapshot in row["snapshots"]:
            out.print(f"  {snapshot['short_id']}  {snapshot['time'][:19].replace('T', ' ')}", markup=False)


def render_drill(report):
    verdict = "[green]PASSED[/green]" if report["passed"] else "[red]FAILED[/red]"
    throughput = report["throughput_mib_s"]
    projected = report["projected_restore_seconds"]
    out = console()
    against_authority = (report.get("authority") or {}).get("checked")
    out.print(f"drill {report['dataset']}: {verdict}: snapshot {report['snapshot'][:8]}, "
              f"{report['files_checked']} files ({human_bytes(report['bytes_restored'])}) checked against the manifest"
              + (f", {against_authority} against the authority" if against_authority else ""))
    if throughput:
        out.print(f"  restore throughput {throughput:.1f} MiB/s ({human_bytes(report['bytes_restored'])} restored)")
    if projected is not None:
        low, high = report["projected_restore_range"]
        drills = report["projection_drills"]
        basis = f"over the last {drills} drills" if drills > 1 else "from this drill only"
        out.print(f"  a full restore of {human_bytes(report['dataset_bytes'])} would take about "
                  f"{format_seconds(projected)} ({format_seconds(low)} to {format_seconds(high)}, {basis})")
        if not report["projection_enough_bytes"]:
            out.print("  [yellow]too few bytes restored for a steady figure[/yellow]: drill with the default sample "
                      "or --sample 64M")
    for failure in report["failures"]:
        out.print(f"  [red]failed[/red] {safe_text(safe_name(failure['path']), markup=True)}: "
                  f"{safe_text(failure['reason'], markup=True)}")


def render_audit(report):
    out = console()
    for row in report["datasets"]:
        if row.get("error"):  # logged once, on stderr
            continue
        if not row["audited"]:
            out.print(f"{row['name']}: {row['reason']}", markup=False)
        else:
            lock = row["object_lock"]
            lock_text = f"{lock['mode']} {lock['days'] or lock['years']}" if lock["enabled"] and lock["mode"] \
                else "enabled without default retention" if lock["enabled"] else "not configured"
            out.print(f"[bold]{row['name']}[/bold]: bucket {row['bucket']}: versioning {row['versioning']}, "
                      f"object lock {lock_text}, {plural(len(row['lifecycle']), 'lifecycle rule')}")
            for warning in row["warnings"]:
                out.print(f"  [yellow]warning[/yellow]: {warning}")
        for copy in row.get("copies", []):
            where = f"bucket {copy['bucket']}" if copy["audited"] else copy["reason"]
            out.print(f"  copy {safe_text(copy['repository'], markup=True)}: {safe_text(where, markup=True)}"
                      + "".join(f"\n    [yellow]warning[/yellow]: {warning}" for warning in copy["warnings"]))


def format_seconds(seconds):
    if seconds is None:
        return "-"
    if seconds >= 60:
        return time.strftime("%H:%M:%S", time.gmtime(seconds))
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


def render_recover_plan(report):
    out = console()
    for row in report["datasets"]:
        if row.get("error"):  # its snapshot could not be read (said above, on stderr)
            out.print(f"[bold]{safe_text(row['name'], markup=True)}[/bold]: [red]cannot be recovered[/red]")
            continue
        notes = [note for note, present in (("policy exists: kept without --force", row["policy_exists"]),
                                            ("target not empty: refused without --force", row["target_non_empty"]))
                 if present]
        out.print(f"[bold]{safe_text(row['name'], markup=True)}[/bold]: snapshot {row['snapshot'][:8]} "
                  f"({format_seconds(row['age_seconds'])} old) from {safe_text(row['repository'], markup=True)} "
                  f"-> {safe_text(safe_name(row['target']), markup=True)}: {row['files']} files, "
                  f"{human_bytes(row['bytes'])}, about {format_seconds(row['projected_seconds'])} "
                  f"({safe_text(row['projection_basis'], markup=True)})"
                  + "".join(f"; [yellow]{note}[/yellow]" for note in notes))
    out.print(f"dry run: nothing written; projected recovery time {format_seconds(report['projected_rto_seconds'])}")


def render_recover(report):
    out = console()
    for row in report["datasets"]:
        name = safe_text(row["name"], markup=True)
        if row.get("skipped"):
            out.print(f"[bold]{name}[/bold]: already recovered and checked in "
                      f"{safe_text(safe_name(row['target']), markup=True)} (snapshot {row['snapshot'][:8]})")
            continue
        verdict = "[green]passed[/green]" if row.get("passed") else "[red]FAILED[/red]"
        if row.get("target") is None:  # its snapshot could not be read (said above, on stderr)
            out.print(f"[bold]{name}[/bold]: snapshot {row['snapshot'][:8]} from "
                      f"{safe_text(row['repository'], markup=True)}: {verdict}")
            continue
        throughput = f" ({row['throughput_mib_s']:.1f} MiB/s)" if row.get("throughput_mib_s") else ""
        out.print(f"[bold]{name}[/bold]: snapshot {row['snapshot'][:8]} from "
                  f"{safe_text(row['repository'], markup=True)} -> {safe_text(safe_name(row['target']), markup=True)}"
                  f": {row['files']} files, {human_bytes(row['bytes'])} in {format_seconds(row['seconds'])}"
                  f"{throughput}: {verdict}")
    passed = sum(1 for row in report["datasets"] if row.get("passed"))
    out.print(f"recovered {passed} of {plural(len(report['datasets']), 'dataset')} in "
              f"{format_seconds(report['rto_seconds'])} (RTO); policies in "
              f"{safe_text(safe_name(report['policies_dir']), markup=True)}")
    out.print("left to do:")
    for number, step in enumerate(report["next_steps"], start=1):
        out.print(f"  {number}. {safe_text(step, markup=True)}")
