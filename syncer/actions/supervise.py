"""Unattended steps tell the user about themselves: healthchecks pings around the step,
ntfy/webhook messages on failures and recoveries, and the Prometheus textfile after it.

What happened is read back from the run history (the runs each action recorded), so
any action, present or future, is reported the same way without knowing about this.
"""

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager

from syncer.errors import EXIT_OK, EXIT_USAGE
from syncer.index.runs import run_before, runs_since
from syncer.log import mask
from syncer.notify.events import classify, is_problem, should_notify
from syncer.notify.pings import hostname, ping_healthchecks, send_ntfy, send_webhook
from syncer.notify.textfile import render_metrics, write_textfile
from syncer.policy.settings import notify_settings

log = logging.getLogger("syncer")
TAIL_LINES = 40


class LogTail(logging.Handler):
    """Keep the last lines syncer logged from one thread (the step's own lines, not
    those of a step running beside it), masked like every other log line."""

    def __init__(self, lines=TAIL_LINES):
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines = deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record):
        if record.thread == self.thread and record.levelno >= logging.INFO:
            self.lines.append(mask(self.format(record)))

    def text(self):
        return "\n".join(self.lines)


@contextmanager
def supervised(policies, db, global_settings, all_policies=None, step="run"):
    """Wrap one unattended step over `policies`.

    Before: a healthchecks "start" ping per distinct ping URL. The block receives a
    dict; it may set "exit_code" (when the step failed before any run was recorded).
    After: per dataset and recorded run, a failure/recovery message to ntfy and the
    webhook; per ping URL "success" or "fail" with the log tail; then the textfile
    and the status page from the state of `all_policies` (default `policies`).
    """
    settings = {policy.name: notify_settings(policy, global_settings) for policy in policies}
    ping_urls = {}
    for policy in policies:
        if settings[policy.name].healthchecks:
            ping_urls.setdefault(settings[policy.name].healthchecks, []).append(policy.name)
    for url in ping_urls:
        ping_healthchecks(url, "start")
    tail = LogTail()
    logging.getLogger("syncer").addHandler(tail)
    started = time.time() - 0.001
    outcome = {"exit_code": EXIT_OK}
    try:
        yield outcome
    finally:
        logging.getLogger("syncer").removeHandler(tail)
        try:
            report_step(policies, db, settings, ping_urls, started, outcome, tail.text(), step)
            write_metrics(all_policies or policies, db, global_settings)
            write_status_page(all_policies or policies, db, global_settings)
        except Exception as error:  # reporting must never turn a finished step into a crash
            log.warning("reporting the %s step failed: %s: %s", step, error.__class__.__name__, error)
            log.debug("reporting failure", exc_info=True)


def report_step(policies, db, settings, ping_urls, started, outcome, tail, step):
    problem_datasets = set()
    for policy in policies:
        for run in runs_since(db, policy.name, started):
            previous = run_before(db, policy.name, run["action"], run["started_at"])
            event = classify(previous and previous["result"], run["result"])
            if event == "failure":
                problem_datasets.add(policy.name)
            notify_run(policy.name, run, event, settings[policy.name], tail)
    failed_without_record = outcome.get("exit_code", EXIT_OK) > 1
    for url, names in ping_urls.items():
        failed = failed_without_record or any(name in problem_datasets for name in names)
        ping_healthchecks(url, "fail" if failed else "success", tail)
    if failed_without_record and not problem_datasets:
        for policy in policies:
            run = {"action": step, "result": "failed", "exit_code": outcome["exit_code"],
                   "started_at": started, "finished_at": time.time(),
                   "summary": {"error": outcome.get("error", "the step failed")}}
            notify_run(policy.name, run, "failure", settings[policy.name], tail)


def notify_run(dataset, run, event, settings, tail):
    if not should_notify(event, settings.events) or not (settings.ntfy or settings.webhook):
        return
    action, result = run["action"], run["result"]
    error = run["summary"].get("error")
    title = {"failure": f"syncer: {dataset} {action} {result}",
             "recovery": f"syncer: {dataset} {action} recovered"}.get(event, f"syncer: {dataset} {action} ok")
    lines = [f"{title} on {hostname()}"] + ([f"error: {error}"] if error else [])
    if is_problem(result) and tail:
        lines += ["", "log tail:", tail]
    if settings.ntfy:
        send_ntfy(settings.ntfy, title, "\n".join(lines), is_problem(result))
    if settings.webhook:
        send_webhook(settings.webhook, {
            "event": event, "dataset": dataset, "action": action, "result": result,
            "exit_code": run.get("exit_code"), "host": hostname(), "started_at": run["started_at"],
            "finished_at": run["finished_at"], "error": error,
            "log_tail": tail.splitlines() if is_problem(result) else []})


def write_metrics(policies, db, global_settings):
    """Rewrite the Prometheus textfile, when one is configured, from the state database."""
    if not global_settings.metrics_textfile:
        return
    from syncer.actions.status import run_status

    report = run_status(policies, db)
    try:
        write_textfile(global_settings.metrics_textfile, render_metrics(report))
    except OSError as error:
        log.warning("the metrics textfile %s cannot be written: %s", global_settings.metrics_textfile,
                    error.strerror or error)


def write_status_page(policies, db, global_settings):
    """Rewrite the status page, when syncer.yaml names one (report: {html: PATH}), from
    the state database."""
    if not global_settings.report.html:
        return
    from syncer.actions.page import build_page
    from syncer.notify.page import render_page, write_page

    try:
        write_page(global_settings.report.html, render_page(build_page(policies, db)))
    except OSError as error:
        log.warning("the status page %s cannot be written: %s", global_settings.report.html, error.strerror or error)


def report_unstartable(global_settings, step, error):
    """Tell the global receivers that an unattended step could not even start (no
    policy file loads), since nobody is watching the terminal."""
    tell_global_receivers(global_settings, step, f"could not start: {error}", getattr(error, "exit_code", None))


def report_left_out(global_settings, step, problems):
    """Tell the global receivers about policy files the step left out (their problems),
    while it ran the others."""
    if problems:
        tell_global_receivers(global_settings, step, "left out policy files with problems: " + "; ".join(problems),
                              EXIT_USAGE)


def tell_global_receivers(global_settings, step, text, exit_code):
    settings = global_settings.notify
    if settings.healthchecks:
        ping_healthchecks(settings.healthchecks, "fail", f"syncer {step} on {hostname()} {text}")
    run = {"action": step, "result": "failed", "exit_code": exit_code,
           "started_at": time.time(), "finished_at": time.time(), "summary": {"error": text}}
    notify_run("(all datasets)", run, "failure", settings, "")
