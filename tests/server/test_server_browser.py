"""The UI in a real headless Chromium: runs appear live, a run shows its tasks and logs, and a
deployment's *Quick run* reaches Completed on the page without a reload.

A real server (``python -m fluvial.server``) and a real worker run as processes on this
test's record; the browser is Debian's chromium driven by chromedriver (the Makefile's
test setup installs both). Screenshots are kept in the test's tmp directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fluvial.server", "--port", str(port),
                             "--no-scheduler"], env=_env())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def worker(home: Path) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-m", "fluvial.cli", "worker", "start",
                             "--pool", "default"], env=_env())
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "Debian's chromium and chromium-driver are needed (make test installs them: "
        "apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1300,1400",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(driver: object, condition, what: str, timeout: float = 60.0) -> object:  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # a live page swaps elements in (htmx): one found just before its swap is stale, and
    # the condition is asked again, as for one not there yet
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException,
                                             StaleElementReferenceException)).until(
        condition, message=f"waited {timeout} s for {what}")


@pytest.mark.timeout(300)
def test_a_user_watches_runs_live_and_quick_runs_a_deployment(
        recorded: dict[str, str], server: str, worker: None, browser, tmp_path: Path,
        project: Path) -> None:
    from selenium.webdriver.common.by import By

    from fluvial.deployments._entrypoint import load_flow

    browser.get(f"{server}/runs")
    _wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body")
              .get_attribute("data-stream-open") == "1", "the live stream to open")
    body = browser.find_element(By.ID, "runs-body")
    before = len(body.find_elements(By.TAG_NAME, "tr"))

    # a run made now, elsewhere, appears in the open list without a reload
    flow = load_flow(f"{project / 'flows.py'}:numbers", None)
    state = flow.with_options(flow_run_name="live-one")(n=2, return_state=True)
    assert state.is_completed()
    _wait_for(browser, lambda d: "live-one" in d.find_element(By.ID, "runs-body").text,
              "the new run in the list")
    row = browser.find_element(By.XPATH, "//tr[contains(., 'live-one')]")
    _wait_for(browser, lambda d: "Completed" in row.text, "its Completed state")
    assert len(browser.find_element(By.ID, "runs-body").find_elements(By.TAG_NAME, "tr")) == \
        before + 1
    browser.save_screenshot(str(tmp_path / "runs.png"))

    # its page: task runs and log lines
    row.find_element(By.TAG_NAME, "a").click()
    _wait_for(browser, lambda d: "live-one" in d.find_element(By.TAG_NAME, "h1").text,
              "the run page")
    tasks = browser.find_element(By.ID, "task-runs-body").find_elements(By.TAG_NAME, "tr")
    assert len(tasks) == 2 and all("Completed" in t.text for t in tasks)
    logs = browser.find_element(By.ID, "logs").text
    assert logs.count("square of") == 2 and "<script>alert(1)</script>" in logs  # shown as text
    browser.save_screenshot(str(tmp_path / "run.png"))

    # a deployment's Quick run, watched until Completed on its run page
    browser.get(f"{server}/deployments")
    dep_row = _wait_for(browser, lambda d: d.find_element(By.ID, f"dep-{recorded['deployment_id']}"),
                        "the deployments table")
    dep_row.find_element(By.XPATH, ".//button[normalize-space()='Quick run']").click()
    link = _wait_for(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, f"#result-{recorded['deployment_id']} a"), "the new run's link")
    link.click()
    header = _wait_for(browser, lambda d: d.find_element(By.ID, "run-header"), "the run page")
    assert header is not None
    _wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body")
              .get_attribute("data-stream-open") == "1", "the run page's stream")
    _wait_for(browser, lambda d: "Completed" in d.find_element(By.ID, "run-header").text,
              "the quick run to reach Completed live", timeout=120)
    _wait_for(browser, lambda d: len(d.find_element(By.ID, "task-runs-body")
                                     .find_elements(By.CSS_SELECTOR, "tr[id^='task-']")) == 2,
              "its task runs to appear live")
    browser.save_screenshot(str(tmp_path / "quick-run.png"))


@pytest.mark.timeout(300)
def test_the_run_page_draws_the_edges_between_tasks(home: Path, server: str, browser,
                                                     tmp_path: Path) -> None:
    """A map feeding a reduce: two nodes (the map's one with its count) and one arrow
    labelled with how many task runs fed the reduce."""
    from selenium.webdriver.common.by import By

    import fluvial.store as store
    from fluvial import flow, get_run_context, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def add_all(values: list[int]) -> int:
        return sum(values)

    @flow
    def reduce_map() -> object:
        add_all.submit(double.map(range(120))).wait()
        return get_run_context().flow_run.id

    run_id = reduce_map()
    recorder = store.get_recorder()
    assert recorder is not None
    recorder.flush()
    browser.get(f"{server}/runs/{run_id}")
    graph = _wait_for(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, "svg[aria-label='task graph']"), "the run's graph")
    nodes = graph.find_elements(By.TAG_NAME, "rect")
    edges = graph.find_elements(By.CSS_SELECTOR, "g.edge")
    assert len(nodes) == 2 and len(edges) == 1
    assert "× 120" in graph.text and "120" in edges[0].text
    double_x, add_x = (float(n.get_attribute("x")) for n in nodes)
    assert double_x < add_x  # laid out by start: the map before the reduce it fed
    browser.save_screenshot(str(tmp_path / "graph.png"))
