"""A SIGKILLed driver leaves no process behind (issue 16, item 15).

The driver runs in its own process; the test kills it with SIGKILL while its workers
are busy, then watches every process it had started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

PROCESS_DRIVER = '''
import sys, time
from fluvial import flow, task
from fluvial.runners import ProcessPoolTaskRunner

@task
def busy(i):
    time.sleep(600)

@flow(task_runner=ProcessPoolTaskRunner(max_workers=3))
def stuck():
    futures = busy.map(range(6))
    print("submitted", flush=True)
    futures.wait()

if __name__ == "__main__":
    stuck()
'''


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _start_driver(tmp_path: Path, source: str, fluvial_home: str) -> subprocess.Popen[str]:
    script = tmp_path / "driver.py"
    script.write_text(source)
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "FLUVIAL_PROGRESS": "off"}
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)


def test_process_runner_children_exit_when_the_driver_is_killed(tmp_path: Path,
                                                                  fluvial_home: str):
    driver = _start_driver(tmp_path, PROCESS_DRIVER, fluvial_home)
    children: list[psutil.Process] = []
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "submitted"
        # three busy workers (children of the forkserver), the forkserver, the resource
        # tracker (and the store's writer process)
        assert _wait_until(lambda: len(_descendants(driver.pid)) >= 6, 60)
        children = _descendants(driver.pid)
        names = [" ".join(p.cmdline()) for p in children]
        assert any("forkserver" in n for n in names), names
        assert any("resource_tracker" in n for n in names), names
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        assert _wait_until(lambda: not _alive(children), 20), [
            " ".join(p.cmdline()) for p in _alive(children)]
    finally:
        for p in _alive(children + _descendants(driver.pid)):
            p.kill()
        if driver.poll() is None:
            driver.kill()
            driver.wait()


RAY_DRIVER = '''
import os, sys, time
from fluvial import flow, task
from fluvial.runners.ray import RayTaskRunner

@task
def busy(i):
    time.sleep(600)

@flow(task_runner=RayTaskRunner())
def stuck():
    futures = busy.map(range(2))
    print("submitted", flush=True)
    futures.wait()

if __name__ == "__main__":
    stuck()
'''

RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "dashboard_agent", "runtime_env")


def test_a_killed_ray_drivers_local_cluster_goes_with_it(tmp_path: Path, fluvial_home: str):
    # What Ray allows: the processes ray.init() started (GCS, raylet, dashboard, monitors)
    # share the driver's fate through the kernel, the raylet's workers follow it at once;
    # the raylet's two agents notice within a couple of minutes (they retry the GCS first).
    import pytest

    pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    driver = _start_driver(tmp_path, RAY_DRIVER, fluvial_home)
    children: list[psutil.Process] = []
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "submitted"

        def busy_workers() -> int:
            return sum("ray::busy" in " ".join(p.cmdline()) for p in _alive(
                _descendants(driver.pid)))

        assert _wait_until(lambda: busy_workers() == 2, 120)
        children = _descendants(driver.pid)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)

        def lingering() -> list[str]:
            out = []
            for p in _alive(children):
                try:
                    line = " ".join(p.cmdline())
                except psutil.NoSuchProcess:
                    continue
                if not any(agent in line for agent in RAY_AGENTS):
                    out.append(line[:120])
            return out

        assert _wait_until(lambda: not lingering(), 30), lingering()
    finally:
        for p in _alive(children + _descendants(driver.pid)):
            p.kill()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
