"""A leak check like distributed's: no child process or thread a runner test started
outlives it.

After each test that uses a task runner (a ``runner``/``session_runner``/``make_runner``
fixture, or a test under ``tests/runners`` or ``tests/reliability``), every process descended from the test process that was not there
before the test must be gone (within a grace period), and so must every thread whose
name starts with ``fluvial-`` that the test started. Expected to outlive a test:
processes of the session-scoped clusters (a Dask ``LocalCluster``, a local Ray, and
everything they start later), the interpreter-wide multiprocessing helpers (the
forkserver, the resource tracker), the workers of the session's process runner, and
the run record's writer process and thread (one per process, closed at exit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

import psutil
import pytest

GRACE_SECONDS = 10.0

# roots of process trees that belong to the session (clusters started by fixtures)
session_roots: set[int] = set()
# what else belongs to the session, asked at check time (e.g. a session runner's workers)
session_sources: list[Callable[[], Iterable[int]]] = []
# and marks in the names of threads that belong to the session (a session runner's)
session_thread_marks: list[Callable[[], Iterable[str]]] = []

_LONG_LIVED = ("multiprocessing.forkserver", "multiprocessing.resource_tracker",
               "fluvial.store.writer")
# threads that live as long as the process, or as the session's Ray runner
_LONG_LIVED_THREADS = ("fluvial-store-", "fluvial-slots", "fluvial-limits-changed",
                       "fluvial-ray-status", "fluvial-ray-lease-renewer")


def _descendants() -> dict[int, psutil.Process]:
    try:
        return {p.pid: p for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return {}


def _live(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _expected(procs: dict[int, psutil.Process]) -> set[int]:
    expected: set[int] = set()
    for source in session_sources:
        expected.update(source())
    for root in session_roots:
        if root in procs:
            expected.add(root)
            try:
                expected.update(p.pid for p in procs[root].children(recursive=True))
            except psutil.Error:
                pass
    for pid, proc in procs.items():
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if any(name in line for name in _LONG_LIVED):
            expected.add(pid)
    return expected


def snapshot_new_children(before: set[int]) -> set[int]:
    """The processes descended from this one that were not in ``before``."""
    return set(_descendants()) - before


def _leaked_processes(before: set[int]) -> list[str]:
    procs = _descendants()
    expected = _expected(procs)
    out = []
    for pid, proc in procs.items():
        if pid in before or pid in expected or not _live(proc):
            continue
        try:
            out.append(f"{pid}: {' '.join(proc.cmdline())[:160]}")
        except psutil.Error:
            continue
    return out


def _leaked_threads(before: set[threading.Thread]) -> list[str]:
    marks = [mark for source in session_thread_marks for mark in source()]
    return [t.name for t in threading.enumerate()
            if t not in before and t.is_alive() and t.name.startswith("fluvial-")
            and not t.name.startswith(_LONG_LIVED_THREADS)
            and not any(mark in t.name for mark in marks)]


_RUNNER_FIXTURES = {"runner", "session_runner", "make_runner"}
_RUNNER_DIRS = ("runners", "reliability")


def _is_runner_test(request: pytest.FixtureRequest) -> bool:
    """Tests that start or use a task runner (the ones this check is for)."""
    if _RUNNER_FIXTURES & set(request.fixturenames):
        return True
    return request.node.path.parent.name in _RUNNER_DIRS


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _is_runner_test(request):
        yield
        return
    procs_before = set(_descendants())
    threads_before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + GRACE_SECONDS
    while True:
        procs = _leaked_processes(procs_before)
        threads = _leaked_threads(threads_before)
        if not procs and not threads:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in [int(line.split(":")[0]) for line in procs]:  # do not leak into the next test
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    pytest.fail("leaked after the test: "
                + "; ".join([*(f"process {p}" for p in procs), *(f"thread {t}" for t in threads)]),
                pytrace=False)
