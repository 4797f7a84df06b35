"""``/api/workers``, ``/api/concurrency_limits`` and ``/api/events``: the rest of the record."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, JsonValue

from fluvial.server import queries
from fluvial.server.db import connection

router = APIRouter(prefix="/api", tags=["platform"])


class EventIn(BaseModel):
    event: str = Field(min_length=1, max_length=1000)
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list, max_length=100)
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    occurred: dt.datetime | None = None
    id: uuid.UUID | None = None


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/workers")
def list_workers() -> list[dict[str, Any]]:
    """Workers with their pools and last heartbeats."""
    with connection() as conn:
        return queries.workers(conn)


@router.get("/concurrency_limits")
def list_limits() -> list[dict[str, Any]]:
    """Tag concurrency limits, with the slots in use on this machine."""
    from fluvial.concurrency import get_slot_manager

    with connection() as conn:
        items = queries.limits(conn)
    manager = get_slot_manager()
    for item in items:
        stats = manager.statistics(item["tag"])
        item["active"], item["holders"] = stats.active, stats.holders
    return items


@router.post("/events", status_code=202)
def emit(body: EventIn) -> dict[str, str]:
    """Record an event (it is evaluated by automations like any other)."""
    from fluvial.events import emit_event
    from fluvial.store import get_recorder

    try:
        event = emit_event(body.event, body.resource, occurred=body.occurred,
                           related=body.related, payload=dict(body.payload), id=body.id)
    except (TypeError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    recorder = get_recorder()
    if recorder is not None:
        recorder.flush()
    return {"id": str(event.id), "event": event.event}
