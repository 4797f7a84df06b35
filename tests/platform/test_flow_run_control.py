"""Cancel, pause and resume through the record; ``serve()`` running its own deployments."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from platform_helpers import env_for_children, wait_until

from fluvial import flow
from fluvial.cli import main
from fluvial.deployments import read_flow_run, run_deployment
from fluvial.deployments._project import deploy_entrypoint
from fluvial.exceptions import FlowPauseTimeout, NotPausedError
from fluvial.flow_runs import cancel_flow_run, pause_flow_run, resume_flow_run
from fluvial.store.recovery import pid_alive


def state_of(run_id: Any) -> str | None:
    return read_flow_run(run_id).state_type


def test_cancelling_a_scheduled_run_cancels_it_at_once(backend, project: Path) -> None:
    deploy_entrypoint("flows.py:add", "x", source=project, parameters={"a": 1})
    run = run_deployment("add/x", timeout=0)
    result = CliRunner().invoke(main, ["runs", "cancel", str(run.id)[:8]])
    assert result.exit_code == 0, result.output
    assert "Cancelled flow run" in result.output
    assert state_of(run.id) == "CANCELLED"
    with pytest.raises(ValueError, match="already Cancelled"):
        cancel_flow_run(run.id)
    from fluvial.deployments._records import connection
    from fluvial.workers._claim import claim_next

    with connection() as conn:  # nobody can claim it any more
        assert claim_next(conn, "w", time.time() + 60) is None


def test_cancelling_a_running_run_stops_its_process(backend, project: Path) -> None:
    deploy_entrypoint("flows.py:sleepy", "nap", source=project, parameters={"seconds": 60})
    run = run_deployment("sleepy/nap", timeout=0)
    worker = subprocess.Popen(
        [sys.executable, "-m", "fluvial.cli", "worker", "start", "--poll-interval", "0.1"],
        env=env_for_children(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: state_of(run.id) == "RUNNING", what="the run to start")
        held = read_flow_run(run.id)
        from fluvial.deployments._records import connection

        with connection() as conn:
            pid = conn.execute("SELECT infrastructure_pid FROM flow_runs WHERE id = ?",
                               (str(run.id),)).fetchone()[0]
        assert cancel_flow_run(run.id) == "CANCELLING"
        assert state_of(run.id) in ("CANCELLING", "CANCELLED")
        wait_until(lambda: state_of(run.id) == "CANCELLED", 30, "the run to be cancelled")
        # the flow process records Cancelled itself (SIGTERM while Cancelling), then exits
        wait_until(lambda: not pid_alive(pid), 30, "the flow process to exit")
        assert worker.poll() is None  # the worker goes on
        assert held.worker_id is not None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert worker.returncode == 0


_SCRIPT = """
import time
from fluvial import flow

@flow
def long_script():
    time.sleep(60)

long_script()
"""


def test_cancelling_a_script_run_signals_its_process(project: Path, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], env=env_for_children(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from fluvial.deployments._records import connection

        def running() -> Any:
            with connection() as conn:
                row = conn.execute("SELECT id FROM flow_runs WHERE state_type = 'RUNNING'"
                                   ).fetchone()
            return row and row[0]

        run_id = wait_until(running, what="the script's flow run to be recorded")
        assert cancel_flow_run(run_id, grace=5) == "CANCELLED"
        assert proc.wait(timeout=30) != 0
        assert state_of(run_id) == "CANCELLED"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_paused_flow_waits_for_resume_and_gets_the_input(backend) -> None:
    @flow
    def approval() -> Any:
        answer = pause_flow_run(timeout=60, poll_interval=0.05)
        return {"answer": answer}

    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("state",
                                                               approval(return_state=True)))
    thread.start()
    from fluvial.deployments._records import connection

    def paused() -> Any:
        with connection() as conn:
            row = conn.execute("SELECT id FROM flow_runs WHERE state_type = 'PAUSED'").fetchone()
        return row and row[0]

    run_id = wait_until(paused, 30, "the flow to pause")
    outcome = CliRunner().invoke(main, ["runs", "resume", run_id, "--input", '{"ok": true}'])
    assert outcome.exit_code == 0, outcome.output
    thread.join(30)
    assert result["state"].is_completed()
    assert result["state"].result() == {"answer": {"ok": True}}
    import fluvial.store

    fluvial.store.get_recorder().flush(timeout=30)
    assert state_of(run_id) == "COMPLETED"
    again = CliRunner().invoke(main, ["runs", "resume", run_id])
    assert again.exit_code == 1 and "not Paused" in again.output
    with pytest.raises(NotPausedError, match="is Completed, not Paused"):
        resume_flow_run(run_id)


def test_a_pause_that_times_out_fails_the_flow() -> None:
    ticks = iter([0.0, 0.0, 5.0, 11.0, 11.0, 11.0])

    @flow
    def waits() -> None:
        pause_flow_run(timeout=10, poll_interval=0.01, clock=lambda: next(ticks))

    state = waits(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, FlowPauseTimeout)
    assert "not resumed within 10 s" in state.message


_SERVE = """
from fluvial import flow

@flow
def served(n: int = 1) -> int:
    return n * 10

if __name__ == "__main__":
    served.serve("svc", parameters={"n": 2}, limit=2)
"""


def test_serve_runs_its_deployments_runs_in_its_own_process(backend, tmp_path: Path) -> None:
    script = tmp_path / "served.py"
    script.write_text(textwrap.dedent(_SERVE))
    proc = subprocess.Popen([sys.executable, str(script)], env=env_for_children(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        from fluvial.deployments import DeploymentNotFound
        from fluvial.deployments._records import get_deployment

        def deployed() -> Any:
            try:
                return get_deployment("served/svc")
            except DeploymentNotFound:
                return None

        dep = wait_until(deployed, 60, "serve() to store its deployment")
        assert dep.work_pool is None and dep.entrypoint.endswith("served.py:served")
        run = run_deployment("served/svc", parameters={"n": 3}, timeout=60)
        assert run.state_type == "COMPLETED", run
        assert run.worker_id is not None
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Serving 'served/svc'" in out


PROCESS_FLOW = """
from fluvial import flow, task
from fluvial.runners import ProcessPoolTaskRunner


@task
def cube(x: int) -> int:
    return x ** 3


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def cubes(n: int = 4) -> int:
    return sum(cube.map(range(n)).result())
"""


def test_watch_follows_a_run_its_worker_runs_with_its_own_task_runner(project: Path) -> None:
    """``deployment run --watch`` prints the states and exits 0 when it completes; the
    flow's process pool runs inside the worker's flow process."""
    (project / "process_flows.py").write_text(textwrap.dedent(PROCESS_FLOW))
    deploy_entrypoint("process_flows.py:cubes", "pool", source=project)
    worker = subprocess.Popen(
        [sys.executable, "-m", "fluvial.cli", "worker", "start", "--max-runs", "1"],
        env=env_for_children(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        watched = subprocess.run(
            [sys.executable, "-m", "fluvial.cli", "deployment", "run", "cubes/pool",
             "--param", "n=5", "--watch", "--timeout", "120"],
            env=env_for_children(), capture_output=True, text=True, timeout=180)
    finally:
        out, _ = worker.communicate(timeout=120)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "Completed" in watched.stdout and "Created flow run" in watched.stdout
    from fluvial.deployments._records import connection

    with connection() as conn:
        rows = conn.execute("SELECT state_type, count(*) FROM task_runs GROUP BY state_type"
                            ).fetchall()
    assert rows == [("COMPLETED", 5)]
    assert worker.returncode == 0, out


_SERVE_PAUSING = """
import fluvial
from fluvial import flow

@flow
def tidy() -> None:
    pass

if __name__ == "__main__":
    fluvial.serve(tidy.to_deployment("hourly", interval=3600), tidy.to_deployment("daily"),
                  limit=1, pause_on_shutdown=True)
"""


def test_serve_with_pause_on_shutdown_pauses_its_deployments(tmp_path: Path) -> None:
    from fluvial.deployments import DeploymentNotFound
    from fluvial.deployments._records import get_deployment, list_deployments

    script = tmp_path / "pausing.py"
    script.write_text(textwrap.dedent(_SERVE_PAUSING))
    proc = subprocess.Popen([sys.executable, str(script)], env=env_for_children(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def both() -> bool:
        try:
            return len(list_deployments("tidy")) == 2 and not get_deployment("tidy/daily").paused
        except DeploymentNotFound:
            return False

    wait_until(both, 60, "serve() to store both deployments")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert [d.paused for d in list_deployments("tidy")] == [True, True]
