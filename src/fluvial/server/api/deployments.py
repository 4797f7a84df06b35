"""``/api/deployments``: list, create from an entrypoint, run with parameters, pause, resume, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, JsonValue

from fluvial.server import queries
from fluvial.server.db import connection

router = APIRouter(prefix="/api/deployments", tags=["deployments"])


class RunIn(BaseModel):
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)


class DeploymentIn(BaseModel):
    entrypoint: str = Field(max_length=1000, description="path/to/file.py:flow, on the server")
    name: str = Field(min_length=1, max_length=200)
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    work_pool: str = Field("default", max_length=200)
    interval: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    cron: str | None = Field(default=None, max_length=200)
    paused: bool = False


def _deployment(name_or_id: str) -> Any:
    from fluvial.deployments import DeploymentNotFound
    from fluvial.deployments._records import get_deployment

    try:
        with connection() as conn:
            return get_deployment(name_or_id, conn)
    except DeploymentNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("")
def list_deployments() -> list[dict[str, Any]]:
    """Every deployment with its schedules and its ten latest runs."""
    with connection() as conn:
        return queries.deployments(conn)


@router.post("", status_code=201)
def create_deployment(body: DeploymentIn) -> dict[str, Any]:
    """Store a deployment of the flow at ``entrypoint`` (loaded on the server to check it)."""
    from fluvial.deployments._flow_api import build_schedules
    from fluvial.deployments._project import deploy_entrypoint

    path = body.entrypoint.rpartition(":")[0]
    if not path.endswith(".py"):
        raise HTTPException(422, f"entrypoint {body.entrypoint!r} must be path/to/file.py:flow")
    try:
        schedules = build_schedules(cron=body.cron, interval=body.interval)
        dep = deploy_entrypoint(body.entrypoint, body.name, schedules=schedules,
                                parameters=dict(body.parameters), tags=body.tags,
                                work_pool=body.work_pool, paused=body.paused)
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything on import
        raise HTTPException(422, f"{type(exc).__name__}: {exc}") from None
    return dep.to_dict()  # type: ignore[no-any-return]


@router.get("/{deployment_id}")
def read_deployment(deployment_id: str) -> dict[str, Any]:
    return _deployment(deployment_id).to_dict()  # type: ignore[no-any-return]


@router.post("/{deployment_id}/run", status_code=201)
def run(deployment_id: str, body: RunIn | None = None) -> dict[str, Any]:
    """Create a run of the deployment now (workers of its pool pick it up)."""
    from fluvial.deployments import run_deployment
    from fluvial.exceptions import ParameterTypeError

    dep = _deployment(deployment_id)
    body = body or RunIn()
    try:
        flow_run = run_deployment(dep.id, parameters=dict(body.parameters), timeout=0,
                                  idempotency_key=body.idempotency_key, as_subflow=False)
    except (ParameterTypeError, ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from None
    return flow_run.to_dict()  # type: ignore[no-any-return]


@router.post("/{deployment_id}/pause")
def pause(deployment_id: str) -> dict[str, Any]:
    from fluvial.deployments._records import set_paused

    return set_paused(_deployment(deployment_id).id, True).to_dict()  # type: ignore[no-any-return]


@router.post("/{deployment_id}/resume")
def resume(deployment_id: str) -> dict[str, Any]:
    from fluvial.deployments._records import set_paused

    return set_paused(_deployment(deployment_id).id, False).to_dict()  # type: ignore[no-any-return]


@router.delete("/{deployment_id}")
def delete(deployment_id: str) -> dict[str, str]:
    from fluvial.deployments._records import delete_deployment

    dep = delete_deployment(_deployment(deployment_id).id)
    return {"deleted": str(dep.id)}
