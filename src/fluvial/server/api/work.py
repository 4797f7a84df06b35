"""What ``fluvial worker start`` does through the server (``FLUVIAL_API_URL``).

A worker registers, beats, claims due runs one at a time (the same atomic claim as on the
database), learns which of its runs are being cancelled and settles those whose process
exited; its flow processes load their run, mark it launched, and fail or settle it when
the engine could not. Each endpoint runs the code a worker on the database runs
(:class:`fluvial.workers._record.DbRecord`, :mod:`fluvial.workers._flow_process`), on the
server's connection.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from fluvial.server.db import connection

router = APIRouter(prefix="/api", tags=["workers"])

_ID = Field(min_length=1, max_length=100)
_TEXT = Field(max_length=500)
_NOW = Field(ge=0, le=1e11)


class WorkerIn(BaseModel):
    name: str = Field(min_length=1, max_length=500)
    pool: str | None = Field(None, max_length=500)
    hostname: str = Field(max_length=255)
    pid: int = Field(ge=0, le=2**31)
    now: float = _NOW


class ClaimIn(BaseModel):
    now: float = _NOW
    pool: str | None = Field(None, max_length=500)
    deployment_ids: list[str] | None = Field(None, max_length=10_000)


class ClaimOut(BaseModel):
    run_id: str | None


class SettleIn(BaseModel):
    code: int = Field(ge=-1024, le=1024)
    cancelling: bool = False
    handing_back: bool = False
    worker_name: str = Field(min_length=1, max_length=500)
    now: float = _NOW


class MessageIn(BaseModel):
    message: str = Field(max_length=10_000)


class LaunchedIn(BaseModel):
    pid: int = Field(ge=0, le=2**31)
    hostname: str = Field(max_length=255)
    code_version: str | None = Field(None, max_length=500)


class FinalIn(BaseModel):
    type: str = Field(pattern="^(COMPLETED|FAILED|CRASHED|CANCELLED)$")
    name: str = Field(min_length=1, max_length=100)
    message: str | None = Field(None, max_length=10_000)


def _record(conn: Any) -> Any:
    from fluvial.workers._record import DbRecord

    return DbRecord(conn)


def _identity(worker_id: str, body: WorkerIn) -> Any:
    from fluvial.workers._record import WorkerIdentity

    return WorkerIdentity(worker_id, body.name, body.pool, body.hostname, body.pid)


def _check(worker_id: str) -> None:
    if not 1 <= len(worker_id) <= 100:
        raise HTTPException(422, "a worker id has 1 to 100 characters")


def _run_exists(conn: Any, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM flow_runs WHERE id = ?", (run_id,)).fetchone() is None:
        raise HTTPException(404, f"no flow run {run_id}")


@router.post("/workers/{worker_id}/register", status_code=204)
def register(worker_id: str, body: WorkerIn) -> None:
    """A worker starts: it appears in the workers list."""
    _check(worker_id)
    with connection() as conn:
        _record(conn).heartbeat(_identity(worker_id, body), body.now)  # idempotent


@router.post("/workers/{worker_id}/heartbeat", status_code=204)
def heartbeat(worker_id: str, body: WorkerIn) -> None:
    """A worker is alive (registered again if it was reaped meanwhile)."""
    _check(worker_id)
    with connection() as conn:
        _record(conn).heartbeat(_identity(worker_id, body), body.now)


@router.delete("/workers/{worker_id}", status_code=204)
def unregister(worker_id: str) -> None:
    """A worker stops."""
    with connection() as conn:
        _record(conn).unregister(worker_id)


@router.post("/workers/{worker_id}/claim", response_model=ClaimOut)
def claim(worker_id: str, body: ClaimIn) -> ClaimOut:
    """Claim the earliest due run of the pool (or of the deployments); ``run_id`` None when
    none is due. Due runs of ``CANCEL_NEW`` deployments at their limit are cancelled first."""
    _check(worker_id)
    if body.pool is None and body.deployment_ids is None:
        raise HTTPException(422, "give a pool or deployment_ids")
    with connection() as conn:
        record = _record(conn)
        record.cancel_collisions(body.now, body.pool, body.deployment_ids)
        return ClaimOut(run_id=record.claim(worker_id, body.now, body.pool,
                                            body.deployment_ids))


@router.get("/workers/{worker_id}/cancelling")
def cancelling(worker_id: str) -> list[str]:
    """The worker's runs being cancelled (it stops their processes)."""
    with connection() as conn:
        return _record(conn).cancelling(worker_id)  # type: ignore[no-any-return]


@router.post("/flow_runs/{run_id}/settle", status_code=204)
def settle(run_id: str, body: SettleIn) -> None:
    """A run's process exited with ``code``: record what it left unsaid."""
    with connection() as conn:
        _run_exists(conn, run_id)
        _record(conn).settle(run_id, body.code, body.cancelling, body.handing_back,
                             body.worker_name, body.now)


@router.post("/flow_runs/{run_id}/crash", status_code=204)
def crash(run_id: str, body: MessageIn) -> None:
    """A worker could not start the run's process."""
    with connection() as conn:
        _run_exists(conn, run_id)
        _record(conn).crash(run_id, body.message)


@router.get("/flow_runs/{run_id}/launch")
def launch(run_id: str) -> dict[str, Any]:
    """What a flow process needs to start the run: its name, tags, parameters, state and
    its deployment's entrypoint, source, version and parameters."""
    from fluvial.workers._flow_process import load_launch

    with connection() as conn:
        info = load_launch(conn, run_id)
    if info is None:
        raise HTTPException(404, f"no flow run {run_id}")
    return info


@router.post("/flow_runs/{run_id}/launched", status_code=204)
def launched(run_id: str, body: LaunchedIn) -> None:
    """The run's process started: its pid, host and the code version."""
    from fluvial.store.connection import transaction
    from fluvial.workers._flow_process import mark_launched

    with connection() as conn:
        _run_exists(conn, run_id)
        with transaction(conn):
            mark_launched(conn, run_id, body.pid, body.hostname, body.code_version)


@router.post("/flow_runs/{run_id}/fail", status_code=204)
def fail(run_id: str, body: MessageIn) -> None:
    """The run could not start (its entrypoint does not load, bad parameters)."""
    from fluvial.deployments._records import set_state
    from fluvial.store.connection import transaction

    with connection() as conn:
        _run_exists(conn, run_id)
        with transaction(conn):
            set_state(conn, run_id, "FAILED", "Failed", body.message)


@router.post("/flow_runs/{run_id}/settle_unrecorded", status_code=204)
def settle_unrecorded(run_id: str, body: FinalIn) -> None:
    """A run still ``PENDING`` whose flow ended before the engine recorded it."""
    from fluvial.store.connection import transaction
    from fluvial.workers._flow_process import settle_unrecorded as settle_pending

    with connection() as conn:
        _run_exists(conn, run_id)
        with transaction(conn):
            settle_pending(conn, run_id, body.type, body.name, body.message)
