"""``fluvial worker start`` through a real server (``FLUVIAL_API_URL``): it claims a
deployment's scheduled run, runs it in a flow process that records through the server,
and neither the worker nor the flow process opens a database of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from remote_helpers import ServerProcess, child_env

FLOWS = '''
from fluvial import flow, task, get_run_logger


@task
def square(x: int) -> int:
    get_run_logger().info("square of %s", x)
    return x * x


@flow(log_prints=True)
def numbers(n: int = 3) -> int:
    print("summing", n)
    return sum(square.map(range(n)).result())


@flow
def broken(n: int = 1) -> int:
    raise ValueError("broken on purpose")
'''


def _post(server: ServerProcess, path: str, body: dict) -> dict:
    response = httpx.post(server.url + path, json=body, timeout=60,
                          headers={"authorization": f"Bearer {server.token}"})
    assert response.status_code < 300, response.text
    return response.json()


def _worker_env(server: ServerProcess, home: Path, token: str) -> dict[str, str]:
    env = child_env(FLUVIAL_HOME=str(home), FLUVIAL_API_URL=server.url,
                    FLUVIAL_API_TOKEN=token, FLUVIAL_PROGRESS="off")
    env.pop("FLUVIAL_DATABASE_URL", None)
    return env


WORKER = [sys.executable, "-m", "fluvial.cli", "worker", "start", "--pool", "default"]


def _worker(server: ServerProcess, home: Path, token: str, *args: str
            ) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKER, *args], env=_worker_env(server, home, token),
                          capture_output=True, text=True, timeout=180)


def test_a_worker_through_the_api_runs_a_deployments_scheduled_run(
        live_server: ServerProcess, tmp_path: Path) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(textwrap.dedent(FLOWS))
    dep = _post(live_server, "/api/deployments", {"entrypoint": f"{flows}:numbers",
                                                  "name": "remote", "parameters": {"n": 4}})
    bad = _post(live_server, "/api/deployments", {"entrypoint": f"{flows}:broken", "name": "bad"})
    run = _post(live_server, f"/api/deployments/{dep['id']}/run", {"parameters": {"n": 5}})
    failing = _post(live_server, f"/api/deployments/{bad['id']}/run", {})
    assert run["state_type"] == "SCHEDULED"
    worker_home = tmp_path / "worker-home"
    done = _worker(live_server, worker_home, live_server.token, "--run-once")
    assert done.returncode == 0, done.stderr
    assert live_server.token not in done.stdout + done.stderr
    finished = live_server.get(f"/api/flow_runs/{run['id']}")
    assert finished["state_type"] == "COMPLETED", finished
    assert [s["type"] for s in finished["states"]] == ["SCHEDULED", "PENDING", "RUNNING",
                                                       "COMPLETED"]
    assert finished["pid"] and finished["hostname"]
    tasks = live_server.get(f"/api/flow_runs/{run['id']}/task_runs")["items"]
    assert len(tasks) == 5 and {t["state_type"] for t in tasks} == {"COMPLETED"}
    messages = [e["message"] for e in live_server.get(f"/api/flow_runs/{run['id']}/logs")]
    assert any(m.endswith("summing 5") for m in messages)
    assert sum("square of" in m for m in messages) == 5
    failed = live_server.get(f"/api/flow_runs/{failing['id']}")
    assert failed["state_type"] == "FAILED"
    assert "broken on purpose" in (failed["state_message"] or "")
    assert live_server.get("/api/workers") == []  # it unregistered as it stopped
    assert not (worker_home / "fluvial.db").exists()


def test_a_worker_with_a_wrong_token_stops_with_a_clear_error(
        live_server: ServerProcess, tmp_path: Path) -> None:
    done = _worker(live_server, tmp_path / "worker-home", "wrong-token", "--run-once")
    assert done.returncode != 0
    assert "refused" in done.stderr and "FLUVIAL_API_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr and "wrong-token" not in done.stderr


def test_the_worker_endpoints_check_their_input(live_server: ServerProcess) -> None:
    headers = {"authorization": f"Bearer {live_server.token}"}
    claim = httpx.post(live_server.url + "/api/workers/w1/claim", headers=headers,
                       json={"now": 1.0, "pool": None, "deployment_ids": None})
    assert claim.status_code == 422 and "pool" in claim.text
    assert httpx.post(live_server.url + "/api/workers/w1/claim", headers=headers,
                      json={"now": 1.0, "pool": "default"}).json() == {"run_id": None}
    missing = httpx.get(live_server.url + "/api/flow_runs/nope/launch", headers=headers)
    assert missing.status_code == 404
    settle = httpx.post(live_server.url + "/api/flow_runs/nope/settle", headers=headers,
                        json={"code": 1, "worker_name": "w", "now": 1.0})
    assert settle.status_code == 404
    assert httpx.post(live_server.url + "/api/workers/w1/claim",
                      json={"now": 1.0, "pool": "default"}).status_code == 401


SLOW_FLOWS = '''
import time

from fluvial import flow, task, get_run_logger


@task
def step(i: int) -> int:
    get_run_logger().info("step %d", i)
    time.sleep(0.05)
    return i


@flow
def slow(n: int = 40) -> int:
    return sum(step(i) for i in range(n))
'''


@contextmanager
def _running_slow_flow(server: ServerProcess, tmp_path: Path, n: int
                       ) -> Iterator[tuple[dict, subprocess.Popen]]:
    """A run of ``slow`` with ``n`` steps, deployed, and a worker (one run at most) that
    has started it: (the run, the worker); the worker is killed if still alive after."""
    flows = tmp_path / "slow_flows.py"
    flows.write_text(textwrap.dedent(SLOW_FLOWS))
    dep = _post(server, "/api/deployments", {"entrypoint": f"{flows}:slow", "name": "slow"})
    run = _post(server, f"/api/deployments/{dep['id']}/run", {"parameters": {"n": n}})
    env = _worker_env(server, tmp_path / "worker-home", server.token)
    worker = subprocess.Popen([*WORKER, "--max-runs", "1", "--poll-interval", "0.1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while server.get(f"/api/flow_runs/{run['id']}")["state_type"] != "RUNNING":
            assert time.monotonic() < deadline and worker.poll() is None, "the run did not start"
            time.sleep(0.05)
        yield run, worker
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_server_restart_while_the_worker_runs_a_flow_loses_nothing(
        live_server: ServerProcess, tmp_path: Path) -> None:
    with _running_slow_flow(live_server, tmp_path, 60) as (run, worker):
        live_server.stop()
        time.sleep(1.5)  # the flow goes on; its batches and the worker's polls fail meanwhile
        assert worker.poll() is None
        live_server.start()
        output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output
    finished = live_server.get(f"/api/flow_runs/{run['id']}")
    assert finished["state_type"] == "COMPLETED", (finished, output)
    assert live_server.rows("SELECT count(*), count(DISTINCT id) FROM task_runs") == [(60, 60)]
    steps = live_server.rows("SELECT message FROM logs WHERE message LIKE '%step %'")
    assert sorted(int(m.rsplit(" ", 1)[1]) for (m,) in steps) == list(range(60))


def test_a_run_cancelled_on_the_server_is_stopped_by_its_worker(
        live_server: ServerProcess, tmp_path: Path) -> None:
    with _running_slow_flow(live_server, tmp_path, 2000) as (run, worker):
        assert _post(live_server, f"/api/flow_runs/{run['id']}/cancel", {}) == {
            "state_type": "CANCELLING"}
        output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output
    assert "stopping flow run" in output
    finished = live_server.get(f"/api/flow_runs/{run['id']}")
    assert finished["state_type"] == "CANCELLED", (finished, output)
    assert live_server.rows("SELECT count(*) FROM task_runs")[0][0] < 2000
