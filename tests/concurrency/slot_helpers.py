"""Helpers shared by the slot-manager tests (pickled by value for Dask and Ray workers)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def peak(intervals: list[tuple[float, float]]) -> int:
    """Largest number of overlapping [start, end] intervals (an end before a start at a tie)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def hold_until_three_started(barrier: str, me: str) -> tuple[float, float]:
    """Holder body shared by every backend: record start, wait until 3 holders ever started, end.

    The first three holders therefore overlap whatever the machine's speed; the
    slot manager alone keeps the overlap from going above the limit.
    """
    start = time.monotonic()
    Path(barrier, me).touch()
    deadline = start + 60
    while len(os.listdir(barrier)) < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    end = time.monotonic()
    return start, end


def run_thread_holders(manager, name: str, n: int, barrier: Path) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with manager.acquire(name):
            iv = hold_until_three_started(str(barrier), f"{os.getpid()}-t{i}")
        with lock:
            out.append(iv)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def kill_while_holding(marker: str, make_manager, name: str) -> str:
    """Task body: take a slot of `name`, write the time to `marker`, then die without releasing.

    A re-run (Dask reschedules the task of a dead worker) just returns.
    """
    if os.path.exists(marker):
        return "rerun"
    manager = make_manager()
    manager.acquire(name)
    Path(marker + ".tmp").write_text(repr(time.monotonic()))
    os.replace(marker + ".tmp", marker)
    os._exit(1)


def wait_for_file(path: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.005)
    return Path(path).read_text()


def dispatch_through_slots(manager, name: str, n: int, submit, on_done) -> None:
    """The runner pattern: `request` in the driver, dispatch in `on_granted`, release on settle."""
    all_granted = threading.Event()
    count = [0]
    lock = threading.Lock()

    def granted(lease) -> None:
        submit(lease)
        with lock:
            count[0] += 1
            if count[0] == n:
                all_granted.set()

    for _ in range(n):
        manager.request(name, 1, granted)
    assert all_granted.wait(120), f"only {count[0]} of {n} granted"
    on_done()


def make_dask_manager():
    from fluvial.concurrency import DaskSlotManager

    return DaskSlotManager(limits={"dkill": 1})


def make_ray_manager():
    from fluvial.concurrency import RaySlotManager

    return RaySlotManager(limits={"rkill": 1}, lease_seconds=2.0)
