"""watchdog says WHAT changed: one observer, one watch per dataset with `watch: true`,
and a second one on its authority's directory when that is `local`.

Changed paths are collected per dataset; the daemon marks them dirty in the index and,
after a quiet spell (`watch_debounce`), triggers a push. The authority's changes only
tell the next verify which paths to compare. When the kernel's inotify watches run
out, the dataset falls back to scheduled scans, said once.
"""

import errno
import logging
import os
import threading
import time

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from syncer.fsio import is_temporary_name
from syncer.index.db import AUTHORITY, LOCAL
from syncer.index.exclude import compile_excludes

log = logging.getLogger("syncer.watch")
# Events that mean the content or the set of files changed (not opens and reads).
CHANGE_EVENTS = ("created", "modified", "deleted", "moved", "closed")
MAX_USER_WATCHES = "/proc/sys/fs/inotify/max_user_watches"
# Past this many changed paths since the last verify, the next verify walks the tree:
# the set would grow with the dataset, and a walk costs no more by then.
MAX_TRACKED_CHANGES = 100_000


class ChangeCollector(FileSystemEventHandler):
    """Collect the relative paths that changed below the root of one side of a dataset."""

    def __init__(self, dataset, root, exclude, changes, side=LOCAL):
        self.dataset = dataset
        self.side = side
        self.root = os.fspath(root)
        self.is_excluded = compile_excludes(exclude)
        self.changes = changes

    def on_any_event(self, event):
        if event.event_type not in CHANGE_EVENTS:
            return
        if event.is_directory and event.event_type == "modified":
            return  # the files inside report their own changes
        paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
        relative = []
        for path in paths:
            path = os.fsdecode(path)
            if not path.startswith(self.root + os.sep):
                continue
            name = path[len(self.root) + 1:].replace(os.sep, "/")
            if name and not self.is_excluded(name) and not is_temporary_name(os.path.basename(name)):
                relative.append(name)
        if relative:
            self.changes.add(self.dataset, relative, self.side)


class PendingChanges:
    """Thread-safe: paths changed per dataset, what is not yet marked dirty, and when
    the last change came (for the debounce)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.unmarked = {}
        self.since_push = {}
        self.last_change = {}
        # (dataset, side) -> paths changed since its last verify, or None once untrusted
        self.since_verify = {}

    def add(self, dataset, paths, side=LOCAL):
        """Record changed `paths` of one side of `dataset`: the local copy's are marked
        dirty and pushed; an authority's only tell the next verify what to compare."""
        with self.lock:
            if side == LOCAL:
                self.unmarked.setdefault(dataset, set()).update(paths)
                self.since_push.setdefault(dataset, set()).update(paths)
                self.last_change[dataset] = time.monotonic()
            tracked = self.since_verify.setdefault((dataset, side), set())
            if tracked is not None:
                tracked.update(paths)
                if len(tracked) > MAX_TRACKED_CHANGES:
                    self.since_verify[(dataset, side)] = None

    def lose_track(self, dataset=None):
        """Events of `dataset` (of every dataset with None) were lost: an overflowed or
        stopped watch, on either side. Its next verify walks and compares everything."""
        with self.lock:
            names = [dataset] if dataset else {name for name, _ in self.since_verify} | set(self.last_change)
            for name in names:
                for side in (LOCAL, AUTHORITY):
                    self.since_verify[(name, side)] = None

    def take_for_verify(self, dataset, side=LOCAL):
        """Return the paths of one side of `dataset` changed since the last call, or None
        when some change may have been missed since then; start tracking afresh."""
        with self.lock:
            taken = self.since_verify.get((dataset, side), set())
            self.since_verify[(dataset, side)] = set()
        return taken

    def take_unmarked(self):
        """Return {dataset: paths} changed since the last call."""
        with self.lock:
            taken, self.unmarked = self.unmarked, {}
        return taken

    def take_quiet(self, debounce_of):
        """Return {dataset: paths} of datasets quiet for their debounce since a change."""
        now, quiet = time.monotonic(), {}
        with self.lock:
            for dataset, paths in list(self.since_push.items()):
                if paths and now - self.last_change.get(dataset, now) >= debounce_of(dataset):
                    quiet[dataset] = self.since_push.pop(dataset)
        return quiet


def max_user_watches():
    """Return fs.inotify.max_user_watches as a number, or None when it cannot be read.
    SYNCER_MAX_USER_WATCHES, when set, stands in for the kernel's value (tests simulate
    a small limit with it)."""
    text = os.environ.get("SYNCER_MAX_USER_WATCHES") or watch_limit()
    return int(text) if text.strip().isdigit() else None


def watch_limit():
    try:
        with open(MAX_USER_WATCHES) as handle:
            return handle.read().strip()
    except OSError:
        return "unknown"


class Watcher:
    """One watchdog observer for every watched dataset."""

    def __init__(self, changes, observer_factory=Observer):
        self.changes = changes
        self.observer = observer_factory()
        self.watching = []
        self.fallen_back = []
        self.roots = {}
        self.authority_roots = {}  # dataset -> its `local` authority's directory, while watched
        self.started = False
        self.overflows = OverflowListener(changes)

    def watch(self, dataset, root, exclude=(), side=LOCAL):
        """Watch `root` recursively; return True, or False (said once, in the log) when
        it cannot be watched and the dataset falls back to scheduled scans (for an
        authority's directory: its verify compares everything)."""
        if not self.started:
            logging.getLogger("watchdog").addHandler(self.overflows)
            self.observer.start()
            self.started = True
        try:
            self.observer.schedule(ChangeCollector(dataset, root, exclude, self.changes, side), os.fspath(root),
                                   recursive=True)
        except OSError as error:
            fallback = "falling back to scheduled scans" if side == LOCAL else "its verify compares everything"
            if error.errno in (errno.ENOSPC, errno.EMFILE):
                log.warning("%s: cannot watch %s: the kernel's inotify %s ran out (fs.inotify.max_user_watches"
                            " is %s; raise it with sysctl); %s", dataset, root,
                            "watches" if error.errno == errno.ENOSPC else "instances", watch_limit(), fallback)
            else:
                log.warning("%s: cannot watch %s (%s); %s", dataset, root, error.strerror or error, fallback)
            if side == LOCAL:
                self.fallen_back.append(dataset)
            return False
        if side == LOCAL:
            self.watching.append(dataset)
            self.roots[dataset] = os.fspath(root)
        else:
            self.authority_roots[dataset] = os.fspath(root)
        return True

    def check(self):
        """Return the watched datasets whose watch has died since the last call (its
        thread stopped: the inotify watches ran out as directories were added, or the
        directory went away); they fall back to scheduled scans."""
        alive = {os.fspath(emitter.watch.path) for emitter in getattr(self.observer, "emitters", ())
                 if emitter.is_alive()}
        lost = [dataset for dataset in self.watching if self.roots.get(dataset) not in alive]
        for dataset in lost:
            self.watching.remove(dataset)
            self.fallen_back.append(dataset)
            self.changes.lose_track(dataset)
            log.warning("%s: watching %s stopped (inotify watches %s); falling back to scheduled scans",
                        dataset, self.roots[dataset], f"limit fs.inotify.max_user_watches={watch_limit()}")
        for dataset, root in list(self.authority_roots.items()):
            if root not in alive:
                del self.authority_roots[dataset]
                self.changes.lose_track(dataset)
                log.warning("%s: watching the authority's directory %s stopped (inotify watches limit "
                            "fs.inotify.max_user_watches=%s); its verify compares everything", dataset, root,
                            watch_limit())
                lost.append(dataset)
        return list(dict.fromkeys(lost))

    def stop(self):
        if self.started:
            self.observer.stop()
            self.observer.join(timeout=5)
            logging.getLogger("watchdog").removeHandler(self.overflows)


class OverflowListener(logging.Handler):
    """watchdog tells nobody but its log that the kernel's inotify queue overflowed (it
    rebuilds its watches and goes on): events were lost, so every watched dataset's
    next verify walks its whole tree."""

    def __init__(self, changes):
        super().__init__(logging.WARNING)
        self.changes = changes

    def emit(self, record):
        if "overflow" in record.getMessage().lower():
            self.changes.lose_track()
