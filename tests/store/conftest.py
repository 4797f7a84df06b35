"""Every store test gets its own FLUVIAL_HOME and a fresh recorder singleton.

A test that asks for ``backend`` (directly, or through ``recorder``/``make_flow_run``)
runs twice: on the embedded SQLite store and on PostgreSQL, each time on a fresh
database (the ``backend``/``pg_url`` fixtures and the session's PostgreSQL server are
in ``tests/stores.py``, shared with the platform and scheduler tests).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import fluvial.store as store
from fluvial.store.recorder import Recorder


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLUVIAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLUVIAL_STORE", raising=False)
    store._reset_for_tests()
    yield tmp_path / "home"
    store._reset_for_tests()


@pytest.fixture
def recorder(backend: str) -> Recorder:
    rec = store.get_recorder()
    assert rec is not None
    return rec


@pytest.fixture
def make_flow_run(recorder: Recorder):
    """``make_flow_run(tasks=3, fail=None, flow_name="etl")``: a complete, flushed flow run."""

    def make(**kwargs):
        return record_flow_run(recorder, **kwargs)

    return make


def record_flow_run(
    rec: Recorder,
    *,
    flow_name: str = "etl",
    tasks: int = 3,
    fail: int | None = None,
    start: float | None = None,
) -> uuid.UUID:
    """A complete flow run with ``tasks`` task runs (task ``fail`` fails), flushed."""
    t = start if start is not None else time.time()
    flow_run_id = uuid.uuid4()
    rec.flow_run_created(flow_run_id, "brave-otter", flow_name, {"n": tasks}, ["nightly"], None, t)
    rec.state(flow_run_id, "PENDING", "Pending", None, t)
    rec.state(flow_run_id, "RUNNING", "Running", None, t + 0.1)
    rec.log(flow_run_id, 20, "flow started", t + 0.1)
    for i in range(tasks):
        task_id = uuid.uuid4()
        ts = t + 0.2 + i
        rec.task_run_created(task_id, flow_run_id, f"extract-{i}", "extract", ["io"], ts)
        rec.state(task_id, "PENDING", "Pending", None, ts)
        rec.state(task_id, "RUNNING", "Running", None, ts + 0.01)
        rec.log(task_id, 20, f"task {i} working", ts + 0.02)
        if i == fail:
            rec.state(task_id, "FAILED", "Failed", "ValueError: bad row 7", ts + 0.5)
        else:
            rec.state(task_id, "COMPLETED", "Completed", None, ts + 0.5, f"/results/{i}")
    end = t + 0.3 + tasks
    if fail is None:
        rec.state(flow_run_id, "COMPLETED", "Completed", None, end)
    else:
        rec.state(flow_run_id, "FAILED", "Failed", "1/3 states failed", end)
    rec.flush(timeout=10)
    return flow_run_id
