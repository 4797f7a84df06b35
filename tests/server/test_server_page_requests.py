"""A page load in a fresh headless Chromium makes at most three requests — the document,
its one script and its event stream — counted from Chrome's network log (issue 12: "at
most 3 requests per page load"). No favicon request either: the page names a data: icon.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchmarks.server_seed import seed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _requests(driver: object) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[attr-defined]
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:")):  # not the browser's own chrome:// pages
                urls.append(url)
    return urls


@pytest.mark.timeout(180)
def test_a_page_load_is_document_script_and_stream(home: Path, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "Debian's chromium and chromium-driver are needed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    seeded = seed(5, 40, 80, big_run_tasks=20)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "fluvial.server", "--port", str(port),
                             "--no-scheduler"], env=env)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.time() < deadline, "the server did not start within 60 s"
                time.sleep(0.1)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            for path in ("/runs", f"/runs/{seeded.big_run}", "/"):
                driver.get(base + path)
                WebDriverWait(driver, 30).until(
                    lambda d: d.execute_script("return document.body.dataset.streamOpen"))
                time.sleep(0.5)  # anything the page asks for after its load
                urls = _requests(driver)
                paths = [u.removeprefix(base).split("?")[0] for u in urls]
                assert len(urls) <= 3, urls
                assert paths[0] == path and "/ui/stream" in paths, urls
                assert not any("favicon" in p for p in paths), urls
        finally:
            driver.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
