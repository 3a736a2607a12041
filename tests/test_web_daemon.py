"""The page of a running daemon: a real `edgewatch run` process on the embedded default (the
bundled person model on vtest.avi), its page, API and /metrics over real sockets, and the page in
a real browser (Debian's chromium, headless, driven by Selenium through chromium-driver).

The browser tests skip where there is no chromium (the emulated arm64 roots); .ci/run installs it
(.ci/setup.d/70-browser.sh), and in CI a skip is a failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1280,1100")


def wait_for(condition, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s")


class RunningDaemon:
    def __init__(self, folder: Path):
        self.state = folder / "state"
        env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY")}
        env["PYTHONPATH"] = str(REPO)
        self.stderr = open(folder / "stderr.txt", "w+")
        # No --config: the embedded default, as the README's first command runs it; any free port.
        self.proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", "--state-dir", str(self.state), "--web-port", "0"],
                                     cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def status(self) -> dict | None:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def started(self) -> str:
        def ready():
            assert self.proc.poll() is None, self.log()
            s = self.status()
            return s and s.get("state") == "running" and (s.get("web") or {}).get("url")
        return wait_for(ready, 120)

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = RunningDaemon(tmp_path_factory.mktemp("daemon"))
    try:
        d.url = d.started()
        yield d
    finally:
        d.stop()


def fetch(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(daemon) -> dict:
    status, body = fetch(daemon.url + "metrics")
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(families: dict, name: str) -> float:
    return families[name].samples[0].value


# -- the daemon's page over HTTP ---------------------------------------------------------------------------


def test_listens_on_loopback_only(daemon):
    listening = [c.laddr for c in psutil.Process(daemon.proc.pid).net_connections("inet") if c.status == psutil.CONN_LISTEN]
    assert listening and all(ipaddress.ip_address(a.ip).is_loopback for a in listening), listening
    assert daemon.url.startswith("http://127.0.0.1:")


def test_status_prints_the_page_address(daemon):
    out = subprocess.run([sys.executable, "-m", "runtime.cli", "status", "--state-dir", str(daemon.state)],
                         cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60)
    port = daemon.url.rsplit(":", 1)[1].strip("/")
    line = next(line for line in out.stdout.splitlines() if line.startswith("page:"))
    assert daemon.url in line and f"ssh -L {port}:127.0.0.1:{port}" in line


def test_api_status_is_what_status_json_holds(daemon):
    def same():
        served = json.loads(fetch(daemon.url + "api/status")[1])
        return served if served == daemon.status() else None
    served = wait_for(same, 30, 0.05)  # status.json is rewritten every second: the same second's
    assert served["pid"] == daemon.proc.pid and served["web"]["url"] == daemon.url


def test_metrics_counters_rise_while_the_daemon_runs(daemon):
    first = scrape(daemon)

    def risen():
        # Capture runs ahead of inference by a queued frame or so: each counter rises on its own schedule.
        later = scrape(daemon)
        return later if (value(later, "edgewatch_frames_inferred") > value(first, "edgewatch_frames_inferred") + 2
                         and value(later, "edgewatch_frames_captured") > value(first, "edgewatch_frames_captured")) else None
    later = wait_for(risen, 60, 1.0)
    invoke_count = next(s.value for s in later["edgewatch_invoke_seconds"].samples if s.name.endswith("_count"))
    assert invoke_count >= value(later, "edgewatch_frames_inferred")
    assert later["edgewatch_model_info"].samples[0].labels["name"] == "person-ssdlite"


def test_api_events_equals_events_json_while_running(daemon, capsys):
    from runtime.cli import main

    def settled():
        # Events are written in batches: the three reads must fall between two of them.
        before = json.loads(fetch(daemon.url + "api/events?label=person")[1])
        assert main(["events", "--json", "--state-dir", str(daemon.state), "--label", "person"]) == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        after = json.loads(fetch(daemon.url + "api/events?label=person")[1])
        return listed if before and before == after == listed else None
    assert wait_for(settled, 120, 0.3)


def test_a_viewer_that_never_reads_does_not_slow_the_pipeline(daemon):
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", int(daemon.url.rsplit(":", 1)[1].strip("/"))))
    stalled.sendall(b"GET /api/live.mjpg HTTP/1.0\r\nHost: localhost\r\n\r\n")  # and never reads
    try:
        def web():
            return json.loads(fetch(daemon.url + "api/web")[1])
        wait_for(lambda: web()["viewers"] == 1, 30)
        inferred = daemon.status()["frames"]["inferred"]
        # Its frames fill the socket buffers, the server's write times out (web.timeout_s) and the
        # viewer's place is freed; the pipeline infers all along and the daemon stays healthy. All
        # waited for together: status.json is rewritten once a second and may lag the drop.
        def freed_and_running():
            status = daemon.status()
            return (web()["viewers"] == 0 and status is not None and status["frames"]["inferred"] > inferred + 5
                    and status["healthy"] and status["state"] == "running")
        wait_for(freed_and_running, 120, 0.5)
    finally:
        stalled.close()


# -- the page in a real browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
        from selenium.common.exceptions import SessionNotCreatedException
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.chromium.remote_connection import (
            ChromiumRemoteConnection,
        )
        from selenium.webdriver.remote.client_config import ClientConfig
    except ImportError:
        missing.append("selenium")
    if missing:
        pytest.skip(f"no {', '.join(missing)} here (bash .ci/setup.d/70-browser.sh installs them)")
    profile = tempfile.mkdtemp(prefix="edgewatch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.page_load_strategy = "eager"  # the live view's stream never "finishes loading"
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    service = Service(shutil.which("chromedriver"))
    service.start()
    # Our own connection for its timeout: a machine shared with other work can make Chromium
    # take minutes to start (never so in CI); selenium's own gives up after 120 s.
    executor = ChromiumRemoteConnection(service.service_url, "goog", "chrome",
                                        client_config=ClientConfig(service.service_url, timeout=400))
    driver = None
    try:
        for attempt in range(3):
            try:
                driver = webdriver.Remote(command_executor=executor, options=options)
                break
            except SessionNotCreatedException:  # chromedriver gives Chromium 60 s to start
                if attempt == 2:
                    raise
        driver.set_page_load_timeout(380)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        service.stop()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_the_page_in_a_browser(daemon, browser, tmp_path):
    from selenium.webdriver.common.by import By

    def js(script, *args):
        return browser.execute_script(script, *args)

    browser.get(daemon.url)
    try:
        check_page(browser, js, By, tmp_path)
    except BaseException:
        failed = tmp_path / "edgewatch-page-failed.png"
        browser.save_screenshot(str(failed))
        print(f"screenshot of the failure: {failed}; the page's state badge said {browser.find_element(By.ID, 'state').text!r}")
        raise


def check_page(browser, js, By, tmp_path):
    # The state at a glance, from /api/status (a loaded machine may make it "degraded" for a while).
    wait_for(lambda: browser.find_element(By.ID, "state").text.split(" ")[0] in ("running", "degraded"), 120)
    assert "person-ssdlite" in browser.find_element(By.ID, "model").text
    wait_for(lambda: float(browser.find_element(By.ID, "fig-fps").text.replace("–", "0") or 0) > 0, 60)
    captured, inferred, _ = (int(v) for v in browser.find_element(By.ID, "fig-frames").text.split(" / "))
    assert captured >= inferred > 0

    # The live view: a picture that changes.
    # (found again at each look: the page may replace the element while it reconnects the stream)
    def live():
        return browser.find_element(By.ID, "live")

    wait_for(lambda: js("return arguments[0].naturalWidth", live()) == 640, 60)
    first = live().screenshot_as_png
    wait_for(lambda: live().screenshot_as_png != first, 60, 0.5)

    # An event row with its thumbnail, which opens the full snapshot.
    # The table is redrawn every few seconds: each look finds the row again, by its event's id.
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def fresh(look):
        try:
            return look()
        except (NoSuchElementException, StaleElementReferenceException):
            return None

    row = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#events tbody tr.event"), 90)[0]
    event_id = wait_for(lambda: fresh(lambda: row.get_attribute("data-id")) or fresh(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#events tbody tr.event")[0].get_attribute("data-id")), 60)
    selector = f'#events tbody tr.event[data-id="{event_id}"]'
    wait_for(lambda: fresh(lambda: js("return arguments[0].complete && arguments[0].naturalWidth",
                                      browser.find_element(By.CSS_SELECTOR, selector + " img.thumb"))) == 240, 60)
    page = tmp_path / "edgewatch-page.png"
    browser.save_screenshot(str(page))
    print(f"screenshot: {page}")
    wait_for(lambda: fresh(lambda: browser.find_element(By.CSS_SELECTOR, selector).click() or True), 60)
    viewer = browser.find_element(By.ID, "viewer")
    assert viewer.is_displayed()
    full = browser.find_element(By.ID, "viewer-img")
    wait_for(lambda: js("return arguments[0].complete && arguments[0].naturalWidth", full) == 768, 60)  # vtest's own size
    assert event_id in browser.find_element(By.ID, "viewer-caption").text

    opened = tmp_path / "edgewatch-event.png"
    browser.save_screenshot(str(opened))
    print(f"screenshot: {opened}")
    assert page.stat().st_size > 10_000 and opened.stat().st_size > 10_000

    browser.find_element(By.ID, "viewer-close").click()
    assert not viewer.is_displayed()
    # No errors from the page's own script (a CSP refusal would show here too).
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] if hasattr(browser, "get_log") else []
    assert not errors, errors
