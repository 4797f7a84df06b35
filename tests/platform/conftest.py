"""Fixtures for deployments, workers and flow-run control: a fresh store per test.

A test that asks for ``backend`` runs on SQLite and on PostgreSQL (the real
throwaway server of ``tests/store/pg_server.py``; where none can be had the
PostgreSQL variants skip, saying why). ``project`` is a directory holding a
flows file; worker tests start real worker and flow processes against the
test's store.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "store"))


import fluvial.store as store  # noqa: E402


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLUVIAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLUVIAL_STORE", raising=False)
    monkeypatch.setenv("FLUVIAL_PROGRESS", "off")
    store._reset_for_tests()
    yield tmp_path / "home"
    store._reset_for_tests()


FLOWS = '''
import os
import signal
import time

from fluvial import flow, task


@task
def double(x: int) -> int:
    return 2 * x


@flow
def add(a: int, b: int = 1) -> int:
    from fluvial.runtime import deployment, flow_run

    marker = os.environ.get("FLUVIAL_TEST_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"{flow_run.id} {deployment.name} {deployment.id} "
                    f"{flow_run.scheduled_start_time.timestamp()} {a + b}\\n")
    return sum(double.map([a, b]).result())


@flow
def sleepy(seconds: float = 30.0) -> str:
    marker = os.environ.get("FLUVIAL_TEST_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"started {os.getpid()}\\n")
    time.sleep(seconds)
    return "woke"


@flow
def dies() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@flow
def fails() -> None:
    raise ValueError("bad row 7")
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with ``flows.py`` (flows add, sleepy, dies, fails), the current directory."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "flows.py").write_text(textwrap.dedent(FLOWS))
    monkeypatch.chdir(root)
    monkeypatch.setenv("FLUVIAL_TEST_MARKER", str(tmp_path / "marker.txt"))
    return root

