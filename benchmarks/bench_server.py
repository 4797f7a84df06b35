"""Benchmarks of the server and its UI over a big record.

A throwaway SQLite record is seeded in bulk with 100 000 flow runs, 1 000 000 task runs
(10 000 of them in one run) and 5 000 000 log lines (``--quick``: a tenth), then a real
server process (``python -m fluvial.server``) is measured:

- list pages (``/runs``, ``/api/flow_runs``, filtered by state and by flow): p95 of the
  response time over loopback. Target < 100 ms.
- the page of the run with 10 000 task runs. Target < 1 s.
- in headless Chromium: DOMContentLoaded of the runs list (target < 500 ms) and the
  number of requests a page load makes (target <= 3).
- a state change recorded while a runs page is open, until its row shows in the page:
  p95 over 20 changes. Target < 1 s.
- the server process's CPU while idle for 10 s. Target < 2 %.

``python -m benchmarks server``.
"""

from __future__ import annotations

import json
import os
import random
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
FLOWS = ["etl", "report", "sync", "train", "score"]
STATES = ["COMPLETED"] * 8 + ["FAILED", "RUNNING"]



def _seed(flow_runs: int, task_runs: int, logs: int, big_run_tasks: int) -> str:
    """Bulk rows straight into the tables; the id of the run with ``big_run_tasks`` task runs.

    Log lines are spread over the task runs (five each at full size), as a real record's are.
    """
    from fluvial.store.connection import open_database, transaction

    conn = open_database()
    now = time.time()
    rng = random.Random(7)
    run_ids = [str(uuid.uuid4()) for _ in range(flow_runs)]
    big = run_ids[-1]
    try:
        with transaction(conn):
            conn.executemany(
                "INSERT INTO flow_runs (id, name, flow_name, parameters, tags, created, "
                "state_type, state_name, start_time, end_time) VALUES (?, ?, ?, '{}', ?, ?, ?, "
                "?, ?, ?)",
                ((rid, f"run-{i}", FLOWS[i % len(FLOWS)], json.dumps(["bench"] if i % 3 else []),
                  now - (flow_runs - i) * 0.8, s, s.title(), now - (flow_runs - i) * 0.8,
                  now - (flow_runs - i) * 0.8 + 0.5)
                 for i, rid in enumerate(run_ids) for s in [rng.choice(STATES)]))
        task_ids: list[str] = []
        chunk = 100_000
        for start in range(0, task_runs, chunk):
            rows = []
            for j in range(start, min(start + chunk, task_runs)):
                parent = big if j < big_run_tasks else run_ids[j % (flow_runs - 1)]
                tid = str(uuid.uuid4())
                task_ids.append(tid)
                rows.append((tid, parent, f"step-{j % 7}-{j}", f"bench.step{j % 7}", "[]",
                             now - 10 + j * 1e-6, "COMPLETED", "Completed", now - 10, now - 9))
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO task_runs (id, flow_run_id, name, task_key, tags, created, "
                    "state_type, state_name, start_time, end_time) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for start in range(0, logs, 250_000):
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO logs (run_id, level, message, ts) VALUES (?, 20, ?, ?)",
                    ((task_ids[k % len(task_ids)], f"processed row {k}", now - 5)
                     for k in range(start, min(start + 250_000, logs))))
    finally:
        conn.close()
    return big


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_ms(url: str) -> float:
    import httpx

    start = time.perf_counter()
    response = httpx.get(url, timeout=30)
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def _browser(tmp: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp / 'profile'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _record_state_change(run_id: str) -> None:
    from fluvial.store import rows
    from fluvial.store.connection import open_database, transaction

    conn = open_database()
    try:
        with transaction(conn):
            rows.insert_states(conn, [(run_id, "COMPLETED", "Completed", None, time.time(), None)])
            rows.refresh_flow_runs(conn, [run_id])
    finally:
        conn.close()


def run(options: Options) -> list[dict[str, Any]]:
    scale = 10 if options.quick else 1
    results: list[dict[str, Any]] = []
    with throwaway_home() as home:
        big = _seed(100_000 // scale, 1_000_000 // scale, 5_000_000 // scale, 10_000)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        proc = subprocess.Popen([sys.executable, "-m", "fluvial.server", "--port", str(port),
                                 "--no-scheduler"], env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    _get_ms(f"{base}/api/health")
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.2)
            lists = ["/runs", "/api/flow_runs?limit=50", "/api/flow_runs?state=FAILED",
                     "/runs?flow_name=report", "/api/flow_runs?tag=bench&limit=100"]
            for path in lists:
                _get_ms(base + path)  # warm
            times = [_get_ms(base + path) for _ in range(20) for path in lists]
            results.append(row(GROUP, "list pages, p95 (5 lists x 20)", _p95(times), "ms",
                               target="< 100 ms", ok=_p95(times) < 100,
                               median=statistics.median(times)))
            run_times = [_get_ms(f"{base}/runs/{big}") for _ in range(10)]
            results.append(row(GROUP, "page of a run with 10 000 task runs, p95", _p95(run_times),
                               "ms", target="< 1000 ms", ok=_p95(run_times) < 1000))
            results += _in_browser(base, Path(home))
            import psutil

            server = psutil.Process(proc.pid)
            time.sleep(2)
            cpu0 = sum(server.cpu_times()[:2])
            time.sleep(10)
            idle = (sum(server.cpu_times()[:2]) - cpu0) / 10 * 100
            results.append(row(GROUP, "idle server CPU over 10 s", idle, "%", target="< 2 %",
                               ok=idle < 2))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return results


def _in_browser(base: str, tmp: Path) -> list[dict[str, Any]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from fluvial.store.connection import open_database

    driver = _browser(tmp)
    out = []
    try:
        loads, requests = [], []
        for _ in range(5):
            driver.get(f"{base}/runs")
            WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body")
                                            .get_attribute("data-stream-open") == "1")
            time.sleep(0.3)
            nav = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [n.domContentLoadedEventEnd - n.startTime, "
                "performance.getEntriesByType('resource').length];")
            loads.append(float(nav[0]))
            requests.append(1 + int(nav[1]))
        out.append(row(GROUP, "runs list in Chromium: DOMContentLoaded, median of 5",
                       statistics.median(loads), "ms", target="< 500 ms",
                       ok=statistics.median(loads) < 500))
        out.append(row(GROUP, "requests per page load (document, scripts, stream)",
                       max(requests), "requests", target="<= 3", ok=max(requests) <= 3))
        conn = open_database()
        try:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM flow_runs WHERE state_type = 'RUNNING' ORDER BY created DESC "
                "LIMIT 20").fetchall()]
        finally:
            conn.close()
        delays = []
        for run_id in ids:
            driver.execute_script(
                "window.__seen = null; const id = arguments[0];"
                "new MutationObserver((m, o) => { const r = document.getElementById('run-' + id);"
                " if (r && r.textContent.includes('Completed')) { window.__seen = performance.now()"
                " + performance.timeOrigin; o.disconnect(); } })"
                ".observe(document.getElementById('runs-body'), {childList: true, subtree: true});",
                run_id)
            start = time.time() * 1000
            _record_state_change(run_id)
            WebDriverWait(driver, 30, poll_frequency=0.05).until(
                lambda d: d.execute_script("return window.__seen") is not None)
            delays.append(driver.execute_script("return window.__seen") - start)
        if delays:
            out.append(row(GROUP, f"state change -> visible in an open page, p95 of {len(delays)}",
                           _p95(delays), "ms", target="< 1000 ms", ok=_p95(delays) < 1000))
    finally:
        driver.quit()
    return out
