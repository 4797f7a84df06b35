"""Server tests: a fresh record with one finished flow run and one deployment of a flows file,
and ``live_server``, a real server process of its own (the remote recording and worker
tests)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_helpers import ServerProcess

import fluvial.store as store

FLOWS = '''
from fluvial import flow, task, get_run_logger


@task
def square(x: int) -> int:
    get_run_logger().info("square of %s <script>alert(1)</script>", x)
    return x * x


@flow
def numbers(n: int = 3, label: str = "x") -> int:
    return sum(square.map(range(n)).result())
'''


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLUVIAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLUVIAL_STORE", raising=False)
    monkeypatch.setenv("FLUVIAL_PROGRESS", "off")
    store._reset_for_tests()
    yield tmp_path / "home"
    from fluvial.server.db import close_all

    close_all()
    store._reset_for_tests()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """``python -m fluvial.server`` started with its own home and record, requiring its
    token; stopped after the test."""
    proc = ServerProcess(tmp_path / "server-home")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "flows.py").write_text(textwrap.dedent(FLOWS))
    return root


@pytest.fixture
def recorded(project: Path) -> dict[str, str]:
    """One completed run of ``numbers`` and a deployment ``numbers/nightly``; their ids."""
    from fluvial.deployments._entrypoint import load_flow

    flow = load_flow(f"{project / 'flows.py'}:numbers", None)
    state = flow(n=4, return_state=True)
    assert state.is_completed()
    dep_id = flow.to_deployment("nightly", parameters={"n": 2}, work_pool_name="default").apply()
    recorder = store.get_recorder()
    assert recorder is not None
    recorder.flush()
    from fluvial.store.queries import list_flow_runs

    return {"run_id": str(list_flow_runs(limit=1)[0].id), "deployment_id": dep_id}
