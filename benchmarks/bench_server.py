"""Benchmarks of the server and its UI over a big record (issue 12's targets).

A throwaway SQLite record is seeded in bulk (:mod:`benchmarks.server_seed`) with 100 000
flow runs, 1 000 000 task runs (10 000 of them in one run) and 5 000 000 log lines
(``--quick``: a tenth), then a real server process (``python -m fluvial.server``) is
measured:

- ``seed``: how long the bulk seed took (rows/s), for scale.
- list pages (``/runs`` unfiltered and filtered by state, flow and tag, and the same lists
  from ``/api/flow_runs``): p95 of the response time over loopback, 20 rounds. Target
  < 100 ms. The dashboard (``/``) is its own row, no target.
- the page of the run with 10 000 task runs: p95 of 10 responses (target < 1 s), and in
  Chromium its load event, p95 of 20 loads (target < 1 s).
- in headless Chromium (``/usr/bin/chromium`` via ``/usr/bin/chromedriver``, selenium):
  DOMContentLoaded of the list pages, p95 of 20 loads (target < 500 ms), and the
  requests each page load makes, counted from Chrome's network log (every
  ``Network.requestWillBeSent``: the document, its script, the event stream, and
  anything else such as a favicon; target <= 3).
- a state change recorded while the runs list is open, until its row shows in the page
  (a ``MutationObserver`` timestamps it): p95 of 20. Target < 1 s.
- a log line recorded while the big run's page is open, until it shows in its log pane:
  p95 of 20. Target < 1 s.
- the server process's CPU over 10 s while idle, no page open (target < 2 %), and, for
  scale, with one runs page open (its event stream polls the record).

The changes are written with the store's own row helpers (``fluvial.store.rows``), as the
writer does. ``python -m benchmarks server`` (``--quick`` for the small record).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.harness import Options, row, throwaway_home

GROUP = "server"
ROUNDS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_ms(client: Any, url: str) -> float:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def _browser(tmp: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _record_state(run_id: str, state: str = "COMPLETED") -> None:
    """A state change as the writer records it: a history row, then the run row refreshed."""
    from fluvial.store import rows
    from fluvial.store.connection import open_database, transaction

    conn = open_database()
    try:
        with transaction(conn):
            rows.insert_states(conn, [(run_id, state, state.title(), None, time.time(), None)])
            rows.refresh_flow_runs(conn, [run_id])
    finally:
        conn.close()


def _record_log(run_id: str, message: str) -> None:
    from fluvial.store import rows
    from fluvial.store.connection import open_database, transaction

    conn = open_database()
    try:
        with transaction(conn):
            rows.insert_logs(conn, [(run_id, 20, message, time.time())])
    finally:
        conn.close()


def _cpu_percent(pid: int, seconds: float) -> float:
    import psutil

    proc = psutil.Process(pid)
    before = sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(proc.cpu_times()[:2]) - before) / seconds * 100


def _wait_up(client: Any, base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering")
        try:
            if client.get(f"{base}/api/health").is_success:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not answer /api/health within 120 s")
        time.sleep(0.2)


def run(options: Options) -> list[dict[str, Any]]:
    import httpx

    from benchmarks.server_seed import seed

    scale = 10 if options.quick else 1
    results: list[dict[str, Any]] = []
    with throwaway_home() as home:
        flow_runs, task_runs, logs = 100_000 // scale, 1_000_000 // scale, 5_000_000 // scale
        seeded = seed(flow_runs, task_runs, logs, big_run_tasks=10_000)
        total = flow_runs + task_runs + logs + seeded.states
        results.append(row(GROUP, f"seed {flow_runs:,} flow runs, {task_runs:,} task runs, "
                                  f"{logs:,} log lines", round(seeded.seconds, 1), "s",
                           rows_per_s=round(total / seeded.seconds), states=seeded.states,
                           db_mb=round(seeded.db_bytes / 1e6)))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "fluvial.server", "--port", str(port),
                                 "--no-scheduler"], env=dict(os.environ),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(timeout=60) as client:
                _wait_up(client, base, proc)
                results += _server_side(client, base, seeded.big_run)
            results += _in_browser(base, Path(home), seeded.big_run, seeded.running, proc.pid)
            time.sleep(2)  # the closed page's stream ends
            idle = _cpu_percent(proc.pid, 10)
            results.append(row(GROUP, "idle server CPU over 10 s (no page open)",
                               round(idle, 2), "%", target="< 2 %", ok=idle < 2))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
    return results


def _server_side(client: Any, base: str, big: str) -> list[dict[str, Any]]:
    lists = ["/runs", "/runs?state=FAILED", "/runs?flow_name=report", "/runs?tag=bench",
             "/api/flow_runs?limit=50", "/api/flow_runs?state=FAILED",
             "/api/flow_runs?flow_name=report&limit=100", "/api/flow_runs?tag=bench&limit=100"]
    for path in lists:
        _get_ms(client, base + path)  # warm: the server's first query of each kind
    times = {path: [] for path in lists}
    for _ in range(ROUNDS):
        for path in lists:
            times[path].append(_get_ms(client, base + path))
    every = [t for ts in times.values() for t in ts]
    slowest = max(lists, key=lambda p: _p95(times[p]))
    out = [row(GROUP, f"list pages, p95 ({len(lists)} lists x {ROUNDS})", round(_p95(every), 1),
               "ms", target="< 100 ms", ok=_p95(every) < 100,
               median=round(statistics.median(every), 1), slowest=slowest,
               slowest_p95=round(_p95(times[slowest]), 1),
               per_list={p: round(_p95(ts), 1) for p, ts in times.items()})]
    _get_ms(client, base + "/")
    dash = [_get_ms(client, base + "/") for _ in range(10)]
    out.append(row(GROUP, "dashboard page, p95 of 10", round(_p95(dash), 1), "ms",
                   median=round(statistics.median(dash), 1)))
    _get_ms(client, f"{base}/runs/{big}")
    run_times = [_get_ms(client, f"{base}/runs/{big}") for _ in range(10)]
    out.append(row(GROUP, "page of a run with 10 000 task runs, server p95 of 10",
                   round(_p95(run_times), 1), "ms", target="< 1000 ms",
                   ok=_p95(run_times) < 1000, median=round(statistics.median(run_times), 1)))
    return out


def _requests_made(driver: Any) -> list[str]:
    """URLs the page asked for since the last call, from Chrome's network log (the
    browser's own pages, such as its new-tab page at start, are not the page's)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")):  # not chrome://, data:
                urls.append(url)
    return urls


def _load(driver: Any, url: str, stream: bool = True) -> dict[str, float]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    if stream:
        WebDriverWait(driver, 30, poll_frequency=0.02).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-stream-open")
            == "1")
    WebDriverWait(driver, 30, poll_frequency=0.02).until(lambda d: d.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return n && n.loadEventEnd > 0;"))
    nav = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.domContentLoadedEventEnd - n.startTime, n.loadEventEnd - n.startTime];")
    return {"dcl": float(nav[0]), "load": float(nav[1])}


def _in_browser(base: str, tmp: Path, big: str, running: list[str],
                server_pid: int) -> list[dict[str, Any]]:
    driver = _browser(tmp)
    out = []
    try:
        lists = ["/runs", "/runs?state=FAILED", "/runs?flow_name=report", "/runs?tag=bench"]
        _load(driver, base + "/runs")  # the first load: nothing cached yet
        time.sleep(0.3)
        requests = {"/runs (first load, empty cache)": len(_requests_made(driver))}
        loads = []
        for i in range(ROUNDS):
            path = lists[i % len(lists)]
            loads.append(_load(driver, base + path, stream=path == "/runs")["dcl"])
            time.sleep(0.3)  # the event stream's request is sent after the load
            requests[path] = max(requests.get(path, 0), len(_requests_made(driver)))
        out.append(row(GROUP, f"list pages in Chromium: DOMContentLoaded, p95 of {ROUNDS}",
                       round(_p95(loads), 1), "ms", target="< 500 ms", ok=_p95(loads) < 500,
                       median=round(statistics.median(loads), 1)))
        big_loads = []
        for _ in range(ROUNDS):
            big_loads.append(_load(driver, f"{base}/runs/{big}")["load"])
            time.sleep(0.3)
            requests["/runs/<big run>"] = max(requests.get("/runs/<big run>", 0),
                                              len(_requests_made(driver)))
        out.append(row(GROUP, "page of a run with 10 000 task runs in Chromium: load, "
                              f"p95 of {ROUNDS}",
                       round(_p95(big_loads), 1), "ms", target="< 1000 ms",
                       ok=_p95(big_loads) < 1000, median=round(statistics.median(big_loads), 1)))
        most = max(requests.values())
        out.append(row(GROUP, "requests per page load (document, script, event stream, ...)",
                       most, "requests", target="<= 3", ok=most <= 3, per_page=requests))

        # a log line recorded while the big run's page is open
        delays = []
        for i in range(ROUNDS):
            text = f"bench-live-log-{i}-{uuid.uuid4().hex[:8]}"
            driver.execute_script(
                "window.__seen = null; const text = arguments[0];"
                "new MutationObserver((m, o) => {"
                " if (document.getElementById('logs').textContent.includes(text)) {"
                "  window.__seen = performance.timeOrigin + performance.now(); o.disconnect(); }})"
                ".observe(document.getElementById('logs'), {childList: true, subtree: true});",
                text)
            start = time.time() * 1000
            _record_log(big, text)
            delays.append(_seen(driver) - start)
        out.append(row(GROUP, f"log line -> visible in an open run page, p95 of {ROUNDS}",
                       round(_p95(delays), 1), "ms", target="< 1000 ms", ok=_p95(delays) < 1000,
                       median=round(statistics.median(delays), 1)))

        # a state change recorded while the runs list is open
        _load(driver, base + "/runs")
        delays = []
        for run_id in running[:ROUNDS]:
            driver.execute_script(
                "window.__seen = null; const id = arguments[0];"
                "new MutationObserver((m, o) => { const r = document.getElementById('run-' + id);"
                " if (r && r.textContent.includes('Completed')) {"
                "  window.__seen = performance.timeOrigin + performance.now(); o.disconnect(); }})"
                ".observe(document.getElementById('runs-body'), {childList: true, subtree: true});",
                run_id)
            start = time.time() * 1000
            _record_state(run_id)
            delays.append(_seen(driver) - start)
        out.append(row(GROUP, f"state change -> visible in an open page, p95 of {len(delays)}",
                       round(_p95(delays), 1), "ms", target="< 1000 ms", ok=_p95(delays) < 1000,
                       median=round(statistics.median(delays), 1)))
        open_cpu = _cpu_percent(server_pid, 10)
        out.append(row(GROUP, "server CPU over 10 s with one runs page open", round(open_cpu, 2),
                       "%", note="its event stream polls the record every 0.25 s"))
    finally:
        driver.quit()
    return out


def _seen(driver: Any) -> float:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30, poll_frequency=0.02).until(
        lambda d: d.execute_script("return window.__seen") is not None)
    return float(driver.execute_script("return window.__seen"))
