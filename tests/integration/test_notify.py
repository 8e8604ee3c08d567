"""Notifications and metrics of unattended runs (`syncer job`), against HTTP receivers on
127.0.0.1: healthchecks pings around every run, ntfy and the webhook on failures and
recoveries only, and a Prometheus textfile that prometheus-client's parser reads."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import run_syncer, write_policy, write_tree

FILES = {"a.txt": "alpha", "dir/b.txt": "beta"}
TOKEN = "c0ffee-5ecret-ping-token"


class Receiver:
    """Records every request; answers `status`."""

    def __init__(self):
        self.requests = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *arguments):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self):
        return [request["path"] for request in self.requests]

    def take(self):
        taken, self.requests = self.requests, []
        return taken

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def site(tmp_path, receiver):
    local = write_tree(tmp_path / "local", FILES)
    authority = write_tree(tmp_path / "authority", FILES)
    policies = tmp_path / "policies"
    write_policy(policies, "docs", {"path": str(local), "authority": {"type": "local", "path": str(authority)},
                                    "schedule": {"verify": "0 * * * *"},
                                    "notify": {"healthchecks": f"{receiver.url}/ping/{TOKEN}"}})
    (policies / "syncer.yaml").write_text(
        f"notify:\n  ntfy: {receiver.url}/ntfy/{TOKEN}\n  webhook: {receiver.url}/hook/{TOKEN}\n"
        f"metrics:\n  textfile: {tmp_path / 'textfile' / 'syncer.prom'}\n")
    return {"tmp": tmp_path, "local": local, "policies": policies, "state": tmp_path / "state",
            "textfile": tmp_path / "textfile" / "syncer.prom"}


def job(site, *arguments):
    return run_syncer("job", *arguments, policies=site["policies"], state=site["state"])


def metrics(site):
    return {family.name: family for family in text_string_to_metric_families(site["textfile"].read_text())}


def value(families, name, **labels):
    [found] = [s.value for s in families[name].samples if s.name == name and s.labels == labels]
    return found


def test_success_pings_only_failure_and_recovery_notify(site, receiver):
    ping = f"/ping/{TOKEN}"
    result = job(site, "verify")
    assert result.exit_code == 0, result.output
    assert receiver.paths() == [f"{ping}/start", ping]  # a success pings, nothing else speaks
    receiver.take()

    (site["local"] / "a.txt").unlink()
    result = job(site, "verify")
    assert result.exit_code == 1
    requests = receiver.take()
    assert [r["path"] for r in requests[:1]] == [f"{ping}/start"]
    by_path = {r["path"]: r for r in requests}
    assert "1 missing_local" in by_path[f"{ping}/fail"]["body"].decode()  # the log tail
    ntfy = by_path[f"/ntfy/{TOKEN}"]
    assert ntfy["headers"]["Title"] == "syncer: docs verify findings"
    assert ntfy["headers"]["Priority"] == "high"
    hook = json.loads(by_path[f"/hook/{TOKEN}"]["body"])
    assert hook["event"] == "failure" and hook["dataset"] == "docs" and hook["action"] == "verify"
    assert hook["result"] == "findings" and hook["exit_code"] == 1
    assert any("1 missing_local" in line for line in hook["log_tail"])

    result = job(site, "verify")  # still failing: notifies again (each failure is news)
    assert f"/hook/{TOKEN}" in receiver.paths()
    receiver.take()

    (site["local"] / "a.txt").write_text("alpha")
    assert job(site, "verify").exit_code == 0
    requests = receiver.take()
    assert [r["path"] for r in requests if r["path"].startswith("/ping")] == [f"{ping}/start", ping]
    hook = json.loads([r for r in requests if r["path"].startswith("/hook")][0]["body"])
    assert hook["event"] == "recovery" and hook["result"] == "ok" and hook["log_tail"] == []

    assert job(site, "verify").exit_code == 0  # a plain success again: only the ping
    assert [p for p in receiver.paths() if not p.startswith("/ping")] == []


def test_events_all_notifies_every_success(site, receiver):
    text = (site["policies"] / "syncer.yaml").read_text().replace("notify:\n", "notify:\n  events: all\n")
    (site["policies"] / "syncer.yaml").write_text(text)
    assert job(site, "verify").exit_code == 0
    hook = json.loads([r for r in receiver.requests if r["path"].startswith("/hook")][0]["body"])
    assert hook["event"] == "success"


def test_a_refusing_receiver_is_logged_without_its_url_and_the_run_still_succeeds(site, receiver):
    receiver.status = 500
    (site["local"] / "a.txt").unlink()
    result = job(site, "verify")
    assert result.exit_code == 1  # the verify's own result, not a notification failure
    host = receiver.url.split("://")[1].split("/")[0]
    assert f"healthchecks notification to {host} was refused: HTTP 500" in result.stderr
    assert f"webhook notification to {host} was refused: HTTP 500" in result.stderr
    assert TOKEN not in result.output


def test_unreachable_receivers_do_not_fail_the_run(site, receiver):
    receiver.close()
    result = job(site, "verify")
    assert result.exit_code == 0, result.output
    host = receiver.url.split("://")[1].split("/")[0]
    assert f"healthchecks notification to {host} could not be sent: Connection refused" in result.stderr
    assert TOKEN not in result.output


def test_the_textfile_is_written_after_each_run(site):
    (site["local"] / "a.txt").unlink()
    assert job(site, "verify").exit_code == 1
    families = metrics(site)
    assert value(families, "syncer_findings", dataset="docs", category="missing_local") == 1
    assert value(families, "syncer_last_run_result", dataset="docs", action="verify", result="findings") == 1
    assert value(families, "syncer_last_run_result", dataset="docs", action="verify", result="ok") == 0
    assert value(families, "syncer_local_files", dataset="docs") == 1
    assert value(families, "syncer_local_bytes", dataset="docs") == 4
    assert value(families, "syncer_checksum_coverage_ratio", dataset="docs") == 1.0
    assert value(families, "syncer_stale", dataset="docs", action="verify") == 0
    assert value(families, "syncer_last_run_duration_seconds", dataset="docs", action="verify") >= 0
    assert [p.name for p in site["textfile"].parent.iterdir()] == ["syncer.prom"]  # no temporary left
    assert TOKEN not in site["textfile"].read_text()


def test_a_bad_global_settings_file_is_one_clear_message(site):
    (site["policies"] / "syncer.yaml").write_text("notify:\n  ntfy: ftp://x\n  event: all\nmetric: {}\n")
    result = job(site, "verify")
    assert result.exit_code == 2
    assert "syncer.yaml: notify.ntfy: must be an http:// or https:// URL" in result.stderr
    assert "syncer.yaml: notify.event: unknown key (did you mean 'events'?)" in result.stderr
    assert "syncer.yaml: metric: unknown key (did you mean 'metrics'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ftp://x" not in result.stderr


def test_a_job_whose_dataset_disk_is_not_mounted_tells_that_datasets_receivers(site, receiver, tmp_path):
    (site["policies"] / "syncer.yaml").write_text(
        f"notify:\n  healthchecks: {receiver.url}/global/{TOKEN}\n  webhook: {receiver.url}/hook/{TOKEN}\n")
    site["local"].rename(tmp_path / "unmounted")  # the disk is not there
    result = job(site, "verify")
    assert result.exit_code == 3  # that dataset's operational failure, not a policy error
    assert f"docs.yaml: path: dataset path {site['local']} does not exist" in result.stderr
    by_path = {r["path"]: r for r in receiver.requests}
    assert f"/ping/{TOKEN}/fail" in by_path  # the dataset's own ping URL hears it
    hook = json.loads(by_path[f"/hook/{TOKEN}"]["body"])
    assert hook["event"] == "failure" and hook["dataset"] == "docs" and "does not exist" in hook["error"]


def test_a_broken_policy_file_is_told_to_the_global_receivers_and_the_others_run(site, receiver):
    (site["policies"] / "syncer.yaml").write_text(
        f"notify:\n  healthchecks: {receiver.url}/global/{TOKEN}\n  webhook: {receiver.url}/hook/{TOKEN}\n")
    (site["policies"] / "broken.yaml").write_text("path: /srv/x\nauthority: [unclosed\n")
    result = job(site, "verify")
    assert result.exit_code == 2
    assert "broken.yaml: line 3, column 1: YAML syntax error" in result.stderr
    assert f"/ping/{TOKEN}" in receiver.paths()  # docs ran, and its own ping says so
    global_fail = [r for r in receiver.requests if r["path"] == f"/global/{TOKEN}/fail"]
    assert global_fail and "broken.yaml" in global_fail[-1]["body"].decode()
    assert receiver.paths()[-1] != f"/global/{TOKEN}"  # no success ping after it
    hooks = [json.loads(r["body"]) for r in receiver.requests if r["path"] == f"/hook/{TOKEN}"]
    assert any(hook["event"] == "failure" and "broken.yaml" in hook["error"] for hook in hooks)
    receiver.take()
    (site["policies"] / "docs.yaml").unlink()  # nothing left that loads: the job cannot start
    result = job(site, "verify")
    assert result.exit_code == 2
    by_path = {r["path"]: r for r in receiver.requests}
    assert "could not start" in by_path[f"/global/{TOKEN}/fail"]["body"].decode()


