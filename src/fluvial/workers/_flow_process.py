"""One deployment run in its own process: ``python -m fluvial.workers._flow_process RUN_ID``.

Started by a worker (or ``serve()``) for a run it claimed, or ahead of time as a
*spare* (``--spare``): it imports what a run needs, then waits for a run id on
stdin, so a due run does not wait for an interpreter to start. It loads the
deployment's flow from its entrypoint, records its pid and the code version on
the run, and calls the flow under the run's id, name and tags (the flow's own
task runner runs inside). It dies with its worker (Linux: ``PR_SET_PDEATHSIG``),
and SIGTERM stops the flow (the run ends ``Crashed`` here; the worker then
records ``Cancelled`` when it was a cancellation). Exit status: 0 when the run
completed, 1 when it did not, 143 after SIGTERM. With ``FLUVIAL_API_URL`` set (a worker
through a server) it loads the run and writes what it says of it through the server's
``/api/flow_runs/{id}/launch|launched|fail|settle_unrecorded`` endpoints, and the flow
records through the server too: it never opens the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from typing import Any

__all__ = ["main"]


class Terminated(BaseException):
    """SIGTERM arrived: the flow run stops."""


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


def _api() -> Any:
    from fluvial.store.remote import api_client

    return api_client()


def _fail(run_id: str, message: str) -> None:
    api = _api()
    if api is not None:
        api.request("POST", f"/api/flow_runs/{run_id}/fail", json={"message": message})
        return
    from fluvial.deployments._records import connection, set_state
    from fluvial.store.connection import transaction

    with connection() as conn, transaction(conn):
        set_state(conn, run_id, "FAILED", "Failed", message)


def _load(run_id: str) -> dict[str, Any] | None:
    api = _api()
    if api is not None:
        from fluvial.exceptions import ApiError

        try:
            info: dict[str, Any] = api.request("GET", f"/api/flow_runs/{run_id}/launch")
            return info
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
    from fluvial.deployments._records import connection

    with connection() as conn:
        return load_launch(conn, run_id)


def load_launch(conn: Any, run_id: str) -> dict[str, Any] | None:
    """What a flow process needs of run ``run_id`` and its deployment; None if no such run."""
    row = conn.execute(
        """SELECT r.name, r.tags, r.job_parameters, r.scheduled_start_time, r.state_type,
                  r.deployment_id, d.name, d.entrypoint, d.source, d.version, d.parameters
           FROM flow_runs r LEFT JOIN deployments d ON d.id = r.deployment_id
           WHERE r.id = ?""",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    keys = ("name", "tags", "job_parameters", "scheduled", "state", "deployment_id",
            "deployment_name", "entrypoint", "source", "version", "deployment_parameters")
    return dict(zip(keys, row, strict=True))


def run(run_id: str) -> int:
    """Run flow run ``run_id``; the exit status."""
    from fluvial.context import PlannedFlowRun, _planned_flow_run
    from fluvial.deployments._entrypoint import code_version, load_flow, resolve_source

    info = _load(run_id)
    if info is None:
        print(f"fluvial: no flow run {run_id}", file=sys.stderr)
        return 1
    if info["state"] != "PENDING":
        print(f"fluvial: flow run {run_id} is {info['state']}, not PENDING; not started",
              file=sys.stderr)
        return 1
    if info["entrypoint"] is None:
        _fail(run_id, "its deployment is gone or has no entrypoint")
        return 1
    try:
        directory = resolve_source(info["source"])
        flow = load_flow(info["entrypoint"], directory)
        version = code_version(info["entrypoint"], directory)
    except Exception as exc:  # noqa: BLE001 - any import error becomes the run's failure
        _fail(run_id, f"cannot load entrypoint {info['entrypoint']!r}: "
                      f"{type(exc).__name__}: {exc}")
        return 1
    _launched(run_id, version)
    raw = info["job_parameters"] or info["deployment_parameters"] or "{}"
    parameters = json.loads(raw)
    deployment = None
    if info["deployment_id"] is not None:
        deployment = {"id": info["deployment_id"], "name": info["deployment_name"],
                      "parameters": json.loads(info["deployment_parameters"] or "{}"),
                      "version": info["version"], "flow_run_id": run_id}
    _planned_flow_run.set(PlannedFlowRun(
        id=uuid.UUID(run_id), name=info["name"], tags=frozenset(json.loads(info["tags"] or "[]")),
        scheduled_start_time=info["scheduled"], deployment=deployment))
    from fluvial.exceptions import ParameterTypeError
    from fluvial.orchestration.parameters import call_arguments
    from fluvial.runtime.deployment import DeploymentInfo, running_deployment

    announced = contextlib.nullcontext() if deployment is None else running_deployment(
        DeploymentInfo(id=deployment["id"], name=deployment["name"],
                       version=deployment["version"], parameters=deployment["parameters"]))
    try:
        with announced:
            args, kwargs = call_arguments(flow.fn, parameters)  # *args/**kwargs flat
            result = flow(*args, **kwargs, return_state=True)
            state = asyncio.run(result) if asyncio.iscoroutine(result) else result
    except ParameterTypeError as exc:
        _fail(run_id, str(exc))
        return 1
    except Terminated:
        return 143
    finally:
        _close_recorder()
    if not state.is_completed():
        _settle_unrecorded(run_id, state)
        return 1
    return 0


def _launched(run_id: str, version: str | None) -> None:
    """Record the process's pid, host and the code version on the run."""
    api = _api()
    if api is not None:
        api.request("POST", f"/api/flow_runs/{run_id}/launched", json={
            "pid": os.getpid(), "hostname": socket.gethostname(), "code_version": version})
        return
    from fluvial.deployments._records import connection
    from fluvial.store.connection import transaction

    with connection() as conn, transaction(conn):
        mark_launched(conn, run_id, os.getpid(), socket.gethostname(), version)


def mark_launched(conn: Any, run_id: str, pid: int, hostname: str,
                  version: str | None) -> None:
    """(In the caller's transaction.)"""
    conn.execute(
        "UPDATE flow_runs SET infrastructure_pid = ?, code_version = ?, hostname = ?, "
        "pid = ? WHERE id = ?", (pid, version, hostname, pid, run_id))


def _settle_unrecorded(run_id: str, state: Any) -> None:
    """A run that ended before the engine recorded it (bad parameters): record its state."""
    api = _api()
    if api is not None:
        api.request("POST", f"/api/flow_runs/{run_id}/settle_unrecorded", json={
            "type": state.type.value, "name": state.name, "message": state.message})
        return
    from fluvial.deployments._records import connection
    from fluvial.store.connection import transaction

    with connection() as conn, transaction(conn):
        settle_unrecorded(conn, run_id, state.type.value, state.name, state.message)


def settle_unrecorded(conn: Any, run_id: str, type_: str, name: str,
                      message: str | None) -> None:
    """Give a run still ``PENDING`` its final state (in the caller's transaction)."""
    from fluvial.deployments._records import set_state

    row = conn.execute("SELECT state_type FROM flow_runs WHERE id = ?", (run_id,)).fetchone()
    if row is not None and row[0] == "PENDING":
        set_state(conn, run_id, type_, name, message)


def _close_recorder() -> None:
    from fluvial.store import get_recorder

    try:
        recorder = get_recorder()
        if recorder is not None:
            recorder.close()
    except Exception:  # noqa: BLE001 - nothing more to record
        pass


def _warm_up() -> None:
    """Import what every run needs, before a run id arrives (a spare process)."""
    import cloudpickle  # noqa: F401

    import fluvial.deployments._entrypoint
    import fluvial.deployments._records
    import fluvial.orchestration.flow_engine
    import fluvial.runners.threads
    import fluvial.runtime.deployment
    import fluvial.store.connection
    import fluvial.store.recorder  # noqa: F401

    try:  # flows with type hints validate their arguments with a pydantic model
        from pydantic import create_model

        create_model("Warm", n=(int, 0)).model_validate({"n": 1})
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    """``RUN_ID``: run it. ``--spare``: warm up, then run the id read from stdin (none: exit)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fluvial.workers._flow_process RUN_ID | --spare", file=sys.stderr)
        return 2
    _die_with_parent()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides; a terminal ^C is its
    try:
        run_id = args[0]
        if run_id == "--spare":
            _warm_up()
            run_id = sys.stdin.readline().strip()
            if not run_id:
                return 0
        return run(run_id)
    except Terminated:
        return 143


if __name__ == "__main__":
    sys.exit(main())
