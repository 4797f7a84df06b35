"""``Event`` and ``emit_event``: Prefect's signature, appended through the batched recorder.

``emit_event`` only appends to the recorder's in-memory queue (no I/O on the
caller's path); the writer commits the event with the next batch and stamps the
time it was received. With the record off (``FLUVIAL_STORE=off``) the event is
built and returned but not recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fluvial.events._labels import canonical_name, resource_labels

__all__ = ["Event", "emit_event"]


class Event(BaseModel):
    """Something that happened to a resource."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event: str
    occurred: dt.datetime
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: uuid.UUID | None = None
    received: dt.datetime | None = None

    @property
    def resource_id(self) -> str:
        return self.resource["fluvial.resource.id"]


def _aware(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"occurred must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def emit_event(
    event: str,
    resource: dict[str, str],
    occurred: dt.datetime | None = None,
    related: list[dict[str, str]] | None = None,
    payload: dict[str, Any] | None = None,
    id: uuid.UUID | None = None,
    follows: uuid.UUID | None = None,
) -> Event:
    """Record that ``event`` happened to ``resource``; return the ``Event``.

    ``resource`` needs a ``fluvial.resource.id`` (Prefect's ``prefect.resource.id`` is
    accepted); each ``related`` resource also a ``fluvial.resource.role``. ``payload``
    must be JSON. An ``id`` already recorded is not recorded twice.
    """
    if not isinstance(event, str) or not event.strip():
        raise ValueError(f"event must be a non-empty string, got {event!r}")
    labels = resource_labels(resource, "resource")
    related_labels = [resource_labels(r, f"related[{i}]", role=True)
                      for i, r in enumerate(related or [])]
    body = dict(payload or {})
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the payload of event {event!r} must be JSON: {exc}") from None
    built = Event(id=id or uuid.uuid4(), event=canonical_name(event), occurred=_aware(occurred),
                  resource=labels, related=related_labels, payload=body, follows=follows)
    from fluvial.store import get_recorder

    recorder = get_recorder()
    if recorder is not None:
        recorder.event(built.id, built.event, built.occurred.timestamp(), labels,
                       related_labels, body, follows)
    return built
