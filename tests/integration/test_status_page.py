"""`syncer report --html` and `syncer serve`: the status page from a state database with
real runs against the demo (verify with findings, pushes, a drill, a scrub, a failed
push), read back by parsing its HTML, by rendering it in headless Chromium, and over
HTTP from the server."""

import os
import shutil
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from syncer.notify.page import human_bytes, human_duration, percent
from tests.integration.page_support import HOSTILE, build_demo_state, read_page
from tests.support import free_port, wait_for_port, write_secret


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_state(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def page(demo):
    """The page written under the units' umask (0077), its HTML, and status --json."""
    target = demo.root / "www" / "status.html"
    previous = os.umask(0o077)
    try:
        written = demo.syncer("report", "--html", target)
    finally:
        os.umask(previous)
    assert written.exit_code == 0, written.output  # the open findings are the page's content, not its exit code
    status = demo.syncer("status", "--json")
    assert status.exit_code == 1
    return target, target.read_text(encoding="utf-8"), status.json()["datasets"][0]


def test_the_page_is_written_whole_and_readable_by_the_web_server(page):
    target, html, _ = page
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755  # the folder report made, reachable too
    assert os.listdir(target.parent) == ["status.html"]  # no temporary file left beside it
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_the_page_needs_nothing_from_outside_and_runs_no_script(page):
    _, html, _ = page
    reader = read_page(html)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(reader.tags)
    assert all(value.startswith("#") for tag, name, value in reader.loads), reader.loads  # in-page links only
    assert "url(" not in html and "@import" not in html


def test_the_overview_row_says_the_state_and_the_numbers_of_status(page):
    _, html, status = page
    [overview] = read_page(html).tables_of("overview")
    assert overview.header == ["Dataset", "State", "Local size", "Checksum coverage", "Open findings",
                               "Recovery point", "Last drill", "Runs"]
    [row] = overview.rows
    name, state, size, coverage, findings, recovery, drill, runs = row
    assert name.startswith("demo ") and status["path"] in name
    assert state == "failing"  # the colour's word: the last push failed, whatever the findings
    assert size == f"{human_bytes(status['bytes'])} {status['files']} files"
    assert coverage.startswith(f"{percent(status['checksum_coverage'])} by checksum")
    # the 4 planted differences, the hostile name (missing here), the file added here later
    assert sum(status["findings"].values()) == 6
    assert findings == "6 2 changed, 2 extra_local, 2 missing_local"
    assert recovery.endswith(" UTC") and "old" in recovery
    assert drill.startswith("failed, ")  # the planted `changed` files differ from the authority
    assert f"{status['drill']['throughput_mib_s']:.1f} MiB/s" in drill
    assert f"projected restore {human_duration(status['projected_restore_seconds'])}" in drill
    assert "verify: findings" in runs and "; next " in runs and "(0 * * * *)" in runs
    assert "push: failed" in runs and "drill: findings" in runs and "scrub: ok" in runs


def test_the_hostile_name_is_shown_as_text(page):
    _, html, _ = page
    reader = read_page(html)
    assert "script" not in reader.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in html and HOSTILE not in html
    [findings] = read_page(html).tables_of("findings")
    assert findings.header == ["Dataset", "Status", "Path", "Reason"]
    assert ["demo", "missing_local", f"photos/{HOSTILE}", ""] in findings.rows
    assert len(findings.rows) == 6


def test_the_failed_run_is_listed_with_its_message(page):
    _, html, _ = page
    [failures] = read_page(html).tables_of("failures")
    [failed] = failures.rows
    assert failed[1:4] == ["demo", "push", "failed"]
    assert "offsite.password_file" in failed[4] and "readable by group or others" in failed[4]


def test_each_chart_has_its_numbers_in_a_table(page):
    _, html, status = page
    reader = read_page(html)
    verify, push, drill, coverage = reader.tables_of("history")
    assert reader.svgs == 6  # findings; bytes added, duration; throughput, projected restore; coverage
    assert verify.header == ["Time (UTC)", "Findings"]
    assert [row[1] for row in verify.rows] == ["6", "4", "4"]  # newest first: the demo verifies twice
    assert push.header == ["Time (UTC)", "Bytes added", "Duration"] and len(push.rows) == 2
    assert all(row[1].endswith(("B", "KiB", "MiB")) and row[2].endswith(" s") for row in push.rows)
    assert drill.header == ["Time (UTC)", "Throughput (MiB/s)", "Projected restore"]
    assert drill.rows == [[drill.rows[0][0], f"{status['drill']['throughput_mib_s']:.1f}",
                           human_duration(status["projected_restore_seconds"])]]
    assert coverage.header == ["Time (UTC)", "By checksum", "Confirmed by scrub (30 days)"]
    scrubbed = [row for row in coverage.rows if row[2] != "-"]
    assert len(coverage.rows) == 4 and len(scrubbed) == 1 and scrubbed[0][1] == "-"
    assert [row[1] for row in coverage.rows if row[1] != "-"] == ["100.0%"] * 3


def test_the_page_says_when_and_by_which_version_it_was_written(page):
    _, html, _ = page
    text = "".join(read_page(html).text)
    assert " UTC by syncer 0.1.0." in text and "Written 20" in text


def test_report_of_a_folder_it_cannot_write_says_so(demo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = demo.syncer("report", "--html", blocker / "status.html")
    assert result.exit_code == 3, result.output
    assert "cannot write the status page" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("width, height", [(1280, 2400), (375, 3000)])
def test_chromium_renders_the_page(page, tmp_path, width, height):
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium is not installed and `make test` could not install it (apt-get install -y chromium)")
    from PIL import Image

    target, _, _ = page
    screenshot = tmp_path / f"status-{width}.png"
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
              "--v=0", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},{height}"]
    shot = subprocess.run([*common, f"--screenshot={screenshot}", target.as_uri()], capture_output=True, text=True,
                          timeout=60)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr
    dom = subprocess.run([*common, "--dump-dom", target.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr
    for run in (shot, dom):  # what a page's console says is logged as INFO:CONSOLE
        assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line], run.stderr
    assert "<h2>Overview</h2>" in dom.stdout and "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in dom.stdout
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (width, height)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 20, "the screenshot is blank (a single colour or nearly)"
    # Something is drawn across the page, not only in a corner: ink in the top band's left two thirds.
    band = image.crop((0, 0, width, 400)).convert("L")
    thirds = [band.crop((third * width // 3, 0, (third + 1) * width // 3, 400)) for third in range(3)]
    assert all(part.getextrema()[0] < 128 for part in thirds[:2]), "the page's top is empty"


def test_job_rewrites_the_page_syncer_yaml_names_after_its_step(demo, tmp_path):
    target = tmp_path / "www" / "status.html"
    settings = demo.policies / "syncer.yaml"
    settings.write_text(f"report:\n  html: {target}\n")
    try:
        previous = os.umask(0o077)
        try:
            first = demo.syncer("job", "verify", "demo")
            written_at = target.stat().st_mtime_ns
            second = demo.syncer("job", "verify", "demo")
        finally:
            os.umask(previous)
    finally:
        settings.unlink()
    assert first.exit_code == second.exit_code == 1, first.output  # verify's findings are the job's exit code
    assert target.stat().st_mtime_ns > written_at  # rewritten after each step
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and os.listdir(target.parent) == ["status.html"]
    [verify, *_] = read_page(target.read_text(encoding="utf-8")).tables_of("history")
    assert [row[1] for row in verify.rows][:2] == ["6", "6"]  # the job's own verify is on the page


# --- syncer serve ------------------------------------------------------------------

TOKEN = "a-long-enough-token-7f3e9c2b1d"


@contextmanager
def serving(demo, *arguments):
    """Run `syncer serve` on a free loopback port; yield its base URL; stop it with SIGTERM."""
    port = free_port()
    command = [sys.executable, "-m", "syncer", "--policies", demo.policies, "--state-dir", demo.state, "serve",
               "--listen", f"127.0.0.1:{port}", *arguments]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SYNCER_")}
    process = subprocess.Popen([str(part) for part in command], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and TOKEN not in stderr


def test_serve_answers_the_page_the_metrics_and_the_status_read_only(demo):
    status = demo.syncer("status", "--json").json()["datasets"][0]
    with serving(demo) as url:
        page = requests.get(url + "/", timeout=30)
        metrics = requests.get(url + "/metrics", timeout=30)
        api = requests.get(url + "/api/status", timeout=30)
        head = requests.head(url + "/", timeout=30)
        posted = requests.post(url + "/", data={"action": "push"}, timeout=30)
        deleted = requests.delete(url + "/api/status", timeout=30)
        missing = requests.get(url + "/run", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none': no script runs
    [overview] = read_page(page.text).tables_of("overview")
    assert overview.rows[0][0].startswith("demo ")
    families = {family.name: family for family in text_string_to_metric_families(metrics.text)}
    assert metrics.status_code == 200 and families["syncer_local_bytes"].samples[0].value == status["bytes"]
    [served] = api.json()["datasets"]
    assert api.status_code == 200 and api.headers["Content-Type"] == "application/json"
    assert served.keys() == status.keys()
    assert (served["name"], served["bytes"], served["findings"]) == (status["name"], status["bytes"],
                                                                     status["findings"])
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 1000
    assert posted.status_code == deleted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    assert missing.status_code == 404


def test_serve_with_a_token_wants_it_on_every_path(demo, tmp_path):
    token_file = write_secret(tmp_path / "serve.token", TOKEN + "\n")
    with serving(demo, "--token-file", token_file) as url:
        answers = {
            "none": requests.get(url + "/", timeout=30),
            "metrics without": requests.get(url + "/metrics", timeout=30),
            "status without": requests.get(url + "/api/status", timeout=30),
            "wrong bearer": requests.get(url + "/", headers={"Authorization": "Bearer not-the-token"}, timeout=30),
            "wrong query": requests.get(url + "/api/status", params={"token": TOKEN[:-1]}, timeout=30),
            "post with": requests.post(url + "/", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30),
            "bearer": requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30),
            "query": requests.get(url + "/", params={"token": TOKEN}, timeout=30),
        }
    codes = {name: answer.status_code for name, answer in answers.items()}
    assert codes == {"none": 401, "metrics without": 401, "status without": 401, "wrong bearer": 401,
                     "wrong query": 401, "post with": 405, "bearer": 200, "query": 200}
    assert answers["none"].headers["WWW-Authenticate"].startswith("Bearer")
    assert "syncer status" in answers["query"].text and "demo" not in answers["none"].text


@pytest.mark.parametrize("listen", ["0.0.0.0:8473", "192.0.2.1:8473", "[::]:8473", "board.example:8473"])
def test_serve_refuses_a_listen_beyond_loopback_without_a_token(demo, listen):
    result = demo.syncer("serve", "--listen", listen, timeout=30)
    assert result.exit_code == 2, result.output
    assert f"--listen {listen} is not loopback: give --token-file" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_a_token_file_others_can_read(demo, tmp_path):
    token_file = tmp_path / "serve.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    result = demo.syncer("serve", "--listen", "0.0.0.0:8473", "--token-file", token_file, timeout=30)
    assert result.exit_code == 2, result.output
    assert "token file" in result.stderr and "chmod 600" in result.stderr and TOKEN not in result.output
