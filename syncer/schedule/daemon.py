"""`syncer daemon`: apscheduler decides WHEN, watchdog says WHAT changed; both call actions.

One cron job per dataset and scheduled action (max_instances=1, coalescing, a misfire
grace time, and a random jitter: daemon.jitter at most, and never more than a tenth of
the shortest gap between the schedule's times). A run missed while the daemon was down
(the last start in the state database is older than the schedule's previous time) runs
soon after start, as systemd's Persistent=true does: as a job of its own that waits for
a free worker however busy the board is, never dropped by the misfire grace time.
Steps of one dataset never overlap. SIGTERM lets the running steps finish for
`stop_grace`, then abandons them (recorded as interrupted) and exits 0. Under systemd
Type=notify: READY, STATUS, WATCHDOG, RELOADING and STOPPING.

The policies are read again when a file of the policies directory changes, or on
SIGHUP (`systemctl reload`): a dataset added is scheduled without a restart, and one
removed is no longer run. A set of files with any problem is not applied: the daemon
goes on with the policies it has, and says why.
"""

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from syncer.actions.changes import mark_changes, refresh_changes
from syncer.actions.run import RUNNERS
from syncer.actions.supervise import supervised, tell_global_receivers, write_metrics, write_status_page
from syncer.actions.verify import run_verify
from syncer.errors import EXIT_USAGE, SyncerError, exit_code_of
from syncer.index.db import AUTHORITY, StateDB
from syncer.index.runs import abandon_unfinished, last_started
from syncer.policy.load import load_global_settings, policies_signature, reread_policies
from syncer.policy.settings import cron_gaps, cron_trigger, watch_settings
from syncer.process import stop_running_children
from syncer.schedule.watch import PendingChanges, Watcher

log = logging.getLogger("syncer.daemon")
WORKERS = 2
TICK_SECONDS = 0.5
# A watched dataset's verify walks its whole tree at least this often, however healthy the
# watch: the safety net under the changes it examines in between.
FULL_WALK_SECONDS = 86400
CATCH_UP_DELAY = 2.0  # seconds after start; staggered per job
JITTER_SHARE = 0.1  # of the shortest gap between a schedule's times
POLICY_CHECK_SECONDS = 5.0  # how often the policies directory is looked at for edits


class Notifier:
    """sd_notify when systemd gave us a socket; nothing otherwise."""

    def __init__(self):
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self.notifier = None
        if self.enabled:
            import sdnotify

            self.notifier = sdnotify.SystemdNotifier()
            if self.notifier.socket is not None:
                # A full socket queue must never stall the main loop (and with it SIGTERM):
                # a dropped watchdog ping is better than a hung daemon.
                self.notifier.socket.setblocking(False)
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        self.watchdog_interval = None
        if self.enabled and usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2

    def notify(self, state):
        if self.notifier:
            self.notifier.notify(state)


class Daemon:
    def __init__(self, policies, state_dir, global_settings, policies_dir=None):
        """`policies_dir`: where `policies` were read, read again when it changes (or on
        SIGHUP); None: the policies stay as given."""
        self.policies = {policy.name: policy for policy in policies}
        self.state_dir = state_dir
        self.settings = global_settings
        self.policies_dir = policies_dir
        self.policies_seen = policies_signature(policies_dir)
        self.next_policy_check = time.monotonic() + POLICY_CHECK_SECONDS
        self.reload_asked = threading.Event()
        self.scheduled = set()  # the ids of the schedules' jobs (plan_jobs), replaced by a reload
        self.stop_event = threading.Event()
        self.dataset_locks = {name: threading.Lock() for name in self.policies}
        self.active = {}  # (dataset, action) -> start time
        self.active_lock = threading.Condition()
        self.changes = PendingChanges()
        self.watcher = None
        self.debounce = {}
        self.said_once = set()
        self.watch_pushes = 0
        self.watch_started = {}  # dataset -> when its watch began
        self.full_walk_at = {}  # dataset -> when the last verify that walked its whole tree began
        self.notifier = Notifier()
        self.db = StateDB(state_dir)  # the main loop's own connection; each step opens another
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(WORKERS)},
                                             job_defaults={"max_instances": 1, "coalesce": True,
                                                           "misfire_grace_time": int(global_settings.misfire_grace)})

    # --- start ----------------------------------------------------------------

    def plan_jobs(self, now=None):
        """Add one job per dataset and scheduled action, and a catch-up job for each run
        missed while the daemon was down; return the number of scheduled jobs."""
        now = now or time.time()
        added = catch_ups = 0
        for policy in self.policies.values():
            for action, expression in policy.schedule.items():
                trigger = cron_trigger(expression, jitter=bounded_jitter(expression, self.settings.jitter, now))
                self.scheduler.add_job(self.run_step, trigger, args=(policy.name, action), id=f"{policy.name}:{action}",
                                       name=f"{policy.name} {action}", replace_existing=True,
                                       misfire_grace_time=int(self.settings.misfire_grace))
                self.scheduled.add(f"{policy.name}:{action}")
                added += 1
                missed = missed_run(expression, last_started(self.db, policy.name, action), now)
                if missed:
                    log.info("%s %s: missed its run at %s while the daemon was not running; running it now",
                             policy.name, action, missed.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
                    # No misfire grace: behind other steps on a busy board it waits for a
                    # worker instead of being dropped until the next slot.
                    start = datetime.now().astimezone() + timedelta(seconds=CATCH_UP_DELAY + catch_ups * 0.5)
                    self.scheduler.add_job(self.run_step, args=(policy.name, action), next_run_time=start,
                                           id=f"{policy.name}:{action}:missed", misfire_grace_time=None,
                                           name=f"{policy.name} {action} (missed run)", replace_existing=True)
                    catch_ups += 1
        return added

    def plan_watches(self):
        for policy in self.policies.values():
            watch, debounce = watch_settings(policy)
            if not watch:
                continue
            self.debounce[policy.name] = debounce
            if self.watcher is None:
                self.watcher = Watcher(self.changes)
            if not policy.path.is_dir():
                log.warning("%s: cannot watch %s: not a directory; falling back to scheduled scans", policy.name,
                            policy.path)
                continue
            if self.watcher.watch(policy.name, policy.path, policy.exclude):
                if policy.authority.type == "local" and policy.authority.path.is_dir():
                    # its changes, too, are then known: verify compares only what changed
                    self.watcher.watch(policy.name, policy.authority.path, policy.exclude, side=AUTHORITY)
                self.watch_started[policy.name] = time.time()
                push = "a push" if policy.offsite else "nothing (no offsite in the policy)"
                log.info("%s: watching %s; changes are marked dirty, then %s after %gs of quiet", policy.name,
                         policy.path, push, debounce)

    # --- policies edited --------------------------------------------------------

    def check_policies(self):
        """Read the policies again when SIGHUP asked for it or a file of the directory
        changed since they were last read; return whether they were applied."""
        if self.policies_dir is None:
            return False
        asked = self.reload_asked.is_set()
        if not asked and time.monotonic() < self.next_policy_check:
            return False
        self.next_policy_check = time.monotonic() + POLICY_CHECK_SECONDS
        seen = policies_signature(self.policies_dir)
        if not asked and seen == self.policies_seen:
            return False
        self.reload_asked.clear()
        self.policies_seen = seen  # a set not applied is said once, not at every check
        return self.reload_policies("SIGHUP" if asked else f"{self.policies_dir} changed")

    def reload_policies(self, why):
        """Apply the policies of `policies_dir` as read now: schedules, watches and global
        settings. Return True; False when a file has a problem (then nothing changes: a
        file left out would stop its dataset's runs, which start-up says at once but an
        edit must not do unseen)."""
        self.notifier.notify("RELOADING=1")
        try:
            return self.apply_policies(why)
        finally:
            watching = len(self.watcher.watching) if self.watcher else 0
            self.notifier.notify(f"READY=1\nSTATUS={len(self.scheduled)} scheduled job(s), {watching} watched "
                                 "dataset(s)")

    def apply_policies(self, why):
        policies, problems = reread_policies(self.policies_dir, self.state_dir)
        if problems:
            text = "; ".join(problems)
            log.error("policies not applied (%s): %s; going on with the %d dataset(s) read before", why, text,
                      len(self.policies))
            # on a thread: a slow receiver must not hold up the main loop and its watchdog pings
            threading.Thread(target=tell_global_receivers, daemon=True, args=(
                self.settings, "daemon", f"did not apply the edited policies: {text}", EXIT_USAGE)).start()
            return False
        before = set(self.policies)
        self.settings = load_global_settings(self.policies_dir)  # its problems were among `problems`
        self.policies = {policy.name: policy for policy in policies}
        for name in self.policies:
            self.dataset_locks.setdefault(name, threading.Lock())
        for job_id in self.scheduled:
            try:
                self.scheduler.remove_job(job_id)
            except JobLookupError:
                pass
        self.scheduled.clear()
        jobs = self.plan_jobs()
        if self.watcher:  # watched anew: what changed meanwhile is not known, so the next verify walks
            self.watcher.stop()
            self.watcher = None
            self.watch_started.clear()
            self.changes.lose_track()
        self.plan_watches()
        watching = len(self.watcher.watching) if self.watcher else 0
        added, removed = sorted(set(self.policies) - before), sorted(before - set(self.policies))
        log.info("policies applied (%s): %d dataset(s)%s%s, %d scheduled job(s), %d watched dataset(s)", why,
                 len(self.policies), f", added {', '.join(added)}" if added else "",
                 f", removed {', '.join(removed)}" if removed else "", jobs, watching)
        write_metrics(list(self.policies.values()), self.db, self.settings)
        write_status_page(list(self.policies.values()), self.db, self.settings)
        return True

    # --- steps ----------------------------------------------------------------

    def run_step(self, dataset, action, changed_paths=None):
        """Run one action on one dataset, supervised (pings, notifications, metrics)."""
        with self.dataset_locks[dataset]:
            policy = self.policies.get(dataset)
            if self.stop_event.is_set() or policy is None:  # stopping, or its policy removed since
                return
            with self.active_lock:
                self.active[(dataset, action)] = time.time()
                self.notifier.notify("STATUS=running " + ", ".join(f"{d} {a}" for d, a in self.active))
            db = StateDB(self.state_dir)
            try:
                with supervised([policy], db, self.settings, list(self.policies.values()), action) as outcome:
                    try:
                        if changed_paths:
                            refresh_changes(policy, db, changed_paths)
                        log.info("%s %s: starting", dataset, action)
                        # a push the watcher triggered makes no snapshot when nothing changed after all
                        options = {"skip_if_unchanged": True} if changed_paths else {}
                        if action == "verify":
                            results = self.verify_watched(policy, db)
                        else:
                            results = RUNNERS[action]([policy], db, **options)["datasets"]
                        log.info("%s %s: finished (exit %d)", dataset, action, exit_code_of(results))
                    except SyncerError as error:
                        log.error("%s %s: %s", dataset, action, error)
                        outcome.update(exit_code=exit_code_of(error), error=str(error))
                    except Exception as error:  # a bug must not take the daemon down
                        log.error("%s %s: internal error: %s: %s", dataset, action, error.__class__.__name__, error)
                        log.debug("internal error", exc_info=True)
                        outcome.update(exit_code=exit_code_of(error),
                                       error=f"internal error: {error.__class__.__name__}")
            finally:
                db.close()
                with self.active_lock:
                    self.active.pop((dataset, action), None)
                    self.active_lock.notify_all()
                    running = ", ".join(f"{d} {a}" for d, a in self.active)
                    self.notifier.notify(f"STATUS={'running ' + running if running else 'idle'}; last: {dataset} "
                                         f"{action} at {time.strftime('%H:%M:%S')}")

    def verify_watched(self, policy, db, now=None):
        """Verify `policy`'s dataset. While its watch has lost nothing since the last walk
        of the whole tree (begun after the watch started, less than FULL_WALK_SECONDS
        ago), only the paths the watch saw change are examined on the local side: k
        changes cost O(k). Otherwise, and at least daily as the safety net, it walks.
        A `local` authority's directory is watched too: while that watch, too, has lost
        nothing, only the paths changed on either side are compared (run_verify)."""
        now = now or time.time()
        started, walked = self.watch_started.get(policy.name), self.full_walk_at.get(policy.name)
        watching = self.watcher is not None and policy.name in self.watcher.watching
        changed = self.changes.take_for_verify(policy.name)
        changed_authority = None
        if watching and policy.authority.type == "local" and policy.name in self.watcher.authority_roots:
            changed_authority = self.changes.take_for_verify(policy.name, AUTHORITY)
        incremental = bool(watching and changed is not None and started and walked and walked >= started \
            and now - walked < FULL_WALK_SECONDS)
        try:
            results = run_verify([policy], db, changed={policy.name: sorted(changed)} if incremental else None,
                                 changed_authority={policy.name: sorted(changed_authority)}
                                 if incremental and changed_authority is not None else None)
        except BaseException:
            self.changes.lose_track(policy.name)  # the paths taken were not examined: walk next time
            raise
        results = results["datasets"]
        if any(result.get("error") for result in results):
            self.changes.lose_track(policy.name)
        elif not incremental:
            self.full_walk_at[policy.name] = now
        return results

    def trigger_push(self, dataset, paths):
        """After a quiet spell: re-index the changed paths and push, as one step."""
        policy = self.policies.get(dataset)
        if policy is None:  # its policy was removed while the changes waited
            return
        if not policy.offsite:
            self.say_once((dataset, "watch-push"), "%s: changes are marked dirty for the next verify; no push "
                          "follows (no offsite in the policy)", dataset)
            return
        log.info("%s: %d path(s) changed and then quiet for %gs; pushing", dataset, len(paths),
                 self.debounce[dataset])
        # A job of its own each time: one still pushing earlier changes must not make
        # apscheduler skip this one (max_instances); the dataset's lock runs them in turn.
        self.watch_pushes += 1
        self.scheduler.add_job(self.run_step, args=(dataset, "push", sorted(paths)),
                               id=f"{dataset}:watch-push:{self.watch_pushes}", name=f"{dataset} push (changes)",
                               next_run_time=datetime.now().astimezone())

    def say_once(self, key, message, *arguments):
        if key not in self.said_once:
            self.said_once.add(key)
            log.warning(message, *arguments)

    # --- the main loop --------------------------------------------------------

    def tick(self):
        """Mark what changed dirty; trigger pushes of datasets that went quiet; notice
        watches that died. Never raises: the main loop (and the watchdog ping) go on."""
        try:
            for dataset, paths in self.changes.take_unmarked().items():
                mark_changes(self.db, dataset, paths)
            for dataset, paths in self.changes.take_quiet(lambda name: self.debounce[name]).items():
                self.trigger_push(dataset, paths)
            if self.watcher:
                self.watcher.check()
        except Exception as error:
            self.say_once(("tick", error.__class__.__name__), "watching: %s: %s (changes may wait for the next "
                          "scheduled scan)", error.__class__.__name__, error)
            log.debug("tick failed", exc_info=True)

    def run(self):
        """Run until SIGTERM/SIGINT."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, frame: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda number, frame: self.reload_asked.set())
        jobs = self.plan_jobs()
        self.plan_watches()
        write_metrics(list(self.policies.values()), self.db, self.settings)
        write_status_page(list(self.policies.values()), self.db, self.settings)
        watching = len(self.watcher.watching) if self.watcher else 0
        # READY=1 and the first watchdog ping before the scheduler starts: a job due at
        # once then reports after them, in the same order on every start.
        self.notifier.notify(f"READY=1\nSTATUS={jobs} scheduled job(s), {watching} watched dataset(s)")
        next_ping = 0.0
        if self.notifier.watchdog_interval:
            self.notifier.notify("WATCHDOG=1")
            next_ping = time.monotonic() + self.notifier.watchdog_interval
        self.scheduler.start()
        for job in self.scheduler.get_jobs():
            log.info("%s: next at %s", job.name, job.next_run_time.strftime("%Y-%m-%d %H:%M:%S"))
        log.info("daemon started: %d scheduled job(s), %d watched dataset(s), pid %d", jobs, watching, os.getpid())
        while not self.stop_event.is_set():
            self.tick()
            try:
                self.check_policies()
            except Exception as error:  # never the daemon's end: it goes on with what it has
                log.error("policies not applied: %s: %s", error.__class__.__name__, error)
                log.debug("reload failed", exc_info=True)
            if self.notifier.watchdog_interval and time.monotonic() >= next_ping:
                self.notifier.notify("WATCHDOG=1")
                next_ping = time.monotonic() + self.notifier.watchdog_interval
            self.stop_event.wait(min(TICK_SECONDS, self.notifier.watchdog_interval or TICK_SECONDS))
        self.shutdown()

    def shutdown(self):
        log.info("stopping: no new steps start")
        self.notifier.notify("STOPPING=1")
        if self.watcher:
            self.watcher.stop()
        self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self.settings.stop_grace
        with self.active_lock:
            while self.active and time.monotonic() < deadline:
                log.info("waiting up to %.0fs for %s to finish", deadline - time.monotonic(),
                         ", ".join(f"{d} {a}" for d, a in self.active))
                self.active_lock.wait(max(0.0, min(5.0, deadline - time.monotonic())))
            abandoned = dict(self.active)
        for dataset, action in abandoned:
            log.warning("%s %s: abandoned (still running after %.0fs); it will run again on schedule", dataset,
                        action, self.settings.stop_grace)
        if abandoned:  # outside systemd nothing else stops them: no restic or git may outlive the daemon
            stopped = stop_running_children()
            if stopped:
                log.info("stopped %d program(s) the abandoned steps were running", stopped)
        for (dataset, action), started in abandoned.items():
            abandon_unfinished(self.db, dataset, action, started)
        self.db.close()
        log.info("daemon stopped")
        if abandoned:
            # Worker threads cannot be interrupted; exit without waiting for them.
            logging.shutdown()
            sys.stdout.flush()
            os._exit(0)


def bounded_jitter(expression, jitter, now=None):
    """Return the jitter, in seconds, for a schedule: `jitter` at most, and never more
    than JITTER_SHARE of the shortest gap between its times, so that a jitter meant to
    spread daily runs does not blur a schedule of every few seconds. None for none."""
    gaps = cron_gaps(expression, now)
    bound = JITTER_SHARE * min(gaps) if gaps else jitter
    return min(jitter, bound) or None


def missed_run(expression, last_start, now):
    """Return the schedule time missed since `last_start` (when it is at or before
    `now`), or None: also None when the action never ran (there is nothing to catch up
    with, as with a systemd timer's first activation)."""
    if last_start is None:
        return None
    trigger = cron_trigger(expression)
    after = datetime.fromtimestamp(last_start + 1, UTC).astimezone()
    due = trigger.get_next_fire_time(None, after)
    return due if due and due.timestamp() <= now else None
