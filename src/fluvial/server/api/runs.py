"""``/api/flow_runs``: list (keyset pages, filters), one run, its task runs and logs; cancel, resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, JsonValue

from fluvial.server import queries
from fluvial.server.db import connection

router = APIRouter(prefix="/api/flow_runs", tags=["flow runs"])

_STATES = "SCHEDULED|PENDING|RUNNING|COMPLETED|FAILED|CRASHED|CANCELLED|CANCELLING|PAUSED"


class PageOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class ResumeIn(BaseModel):
    run_input: JsonValue = None


def _page(page: queries.Page) -> PageOut:
    return PageOut(items=page.items, next_cursor=page.next_cursor)


def _bad_cursor(exc: ValueError) -> HTTPException:
    return HTTPException(400, str(exc))


@router.get("", response_model=PageOut)
def list_flow_runs(
    limit: int = Query(50, ge=1, le=queries.MAX_PAGE),
    cursor: str | None = Query(None, max_length=400),
    state: str | None = Query(None, pattern=f"^(?i:{_STATES})$"),
    flow_name: str | None = Query(None, max_length=500),
    deployment_id: str | None = Query(None, max_length=100),
    tag: str | None = Query(None, max_length=500),
    since: float | None = Query(None, ge=0, le=1e11),
    until: float | None = Query(None, ge=0, le=1e11),
) -> PageOut:
    """Flow runs, newest first; ``next_cursor`` gives the next page."""
    try:
        with connection() as conn:
            return _page(queries.flow_runs(conn, limit=limit, cursor=cursor, state=state,
                                           flow_name=flow_name, deployment_id=deployment_id,
                                           tag=tag, since=since, until=until))
    except ValueError as exc:
        raise _bad_cursor(exc) from None


def _run_or_404(conn: Any, run_id: str) -> dict[str, Any]:
    run = queries.flow_run(conn, run_id)
    if run is None:
        raise HTTPException(404, f"no flow run {run_id}")
    return run


@router.get("/{run_id}")
def read_flow_run(run_id: str) -> dict[str, Any]:
    """One flow run with its state history, its task runs counted per task and state, and
    the edges between its tasks (how many task runs of one fed runs of the other)."""
    with connection() as conn:
        run = _run_or_404(conn, run_id)
        run["states"] = queries.run_states(conn, run_id)
        run["tasks"] = queries.task_run_summary(conn, run_id)
        run["edges"] = queries.task_edges(conn, run_id)
    return run


@router.get("/{run_id}/task_runs", response_model=PageOut)
def list_task_runs(run_id: str, limit: int = Query(200, ge=1, le=queries.MAX_PAGE),
                   cursor: str | None = Query(None, max_length=400),
                   state: str | None = Query(None, pattern=f"^(?i:{_STATES})$")) -> PageOut:
    """A flow run's task runs in creation order."""
    try:
        with connection() as conn:
            _run_or_404(conn, run_id)
            return _page(queries.task_runs(conn, run_id, limit=limit, cursor=cursor,
                                           state=state))
    except ValueError as exc:
        raise _bad_cursor(exc) from None


@router.get("/{run_id}/logs")
def list_logs(run_id: str, after: int = Query(0, ge=0, le=2**62),
              limit: int = Query(500, ge=1, le=2500)) -> list[dict[str, Any]]:
    """Log lines of the run and its task runs, oldest first, after sequence ``after``."""
    with connection() as conn:
        _run_or_404(conn, run_id)
        return queries.logs(conn, run_id, after_seq=after, limit=limit)


@router.post("/{run_id}/cancel")
def cancel(run_id: str) -> dict[str, str]:
    """Cancel the run: a waiting one at once, a running one through its worker or process."""
    from fluvial.flow_runs import cancel_flow_run

    with connection() as conn:
        _run_or_404(conn, run_id)
    try:
        return {"state_type": cancel_flow_run(run_id, wait=False)}
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{run_id}/resume")
def resume(run_id: str, body: ResumeIn | None = None) -> dict[str, str]:
    """Resume a paused run, handing it ``run_input``."""
    from fluvial.exceptions import NotPausedError
    from fluvial.flow_runs import resume_flow_run

    with connection() as conn:
        _run_or_404(conn, run_id)
    try:
        resume_flow_run(run_id, run_input=body.run_input if body else None)
    except (NotPausedError, ValueError) as exc:
        raise HTTPException(409, str(exc)) from None
    return {"state_type": "RUNNING"}
