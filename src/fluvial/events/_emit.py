"""``Event`` and ``emit_event``: Prefect's signature, appended through the batched recorder.

``emit_event`` only appends to the recorder's in-memory queue (no I/O on the
caller's path); the writer commits the event with the next batch and stamps the
time it was received. With the record off (``FLUVIAL_STORE=off``) the event is
built and returned but not recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fluvial.context import _flow_run
from fluvial.events._labels import PREFECT, canonical_name, resource_labels
from fluvial.runs import time_ordered_id

__all__ = ["Event", "emit_event"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a resource (``model_dump()`` gives its JSON form)."""

    event: str
    occurred: dt.datetime
    resource: dict[str, str]
    related: list[dict[str, str]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=time_ordered_id)
    follows: uuid.UUID | None = None
    received: dt.datetime | None = None

    @property
    def resource_id(self) -> str:
        return self.resource["fluvial.resource.id"]

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        """The event as JSON-ready data (pydantic's name, as Prefect's ``Event`` has it)."""
        return {"id": str(self.id), "event": self.event, "occurred": self.occurred.isoformat(),
                "resource": dict(self.resource), "related": [dict(r) for r in self.related],
                "payload": self.payload, "follows": None if self.follows is None
                else str(self.follows),
                "received": None if self.received is None else self.received.isoformat()}

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())


def _aware(value: dt.datetime) -> dt.datetime:
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
    if not isinstance(event, str) or not event or event.isspace():
        raise ValueError(f"event must be a non-empty string, got {event!r}")
    labels = resource_labels(resource, "resource")
    related_labels = [resource_labels(r, f"related[{i}]", role=True)
                      for i, r in enumerate(related)] if related else []
    body = dict(payload) if payload else {}
    if body and not _plainly_json(body):
        try:
            json.dumps(body)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the payload of event {event!r} must be JSON: {exc}") from None
    if occurred is None:
        ts = _time()
        occurred = _from_ts(ts, _UTC)
    else:
        occurred = _aware(occurred)
        ts = occurred.timestamp()
    if event.startswith(PREFECT):
        event = canonical_name(event)
    built = _built(event, occurred, labels, related_labels, body, id or time_ordered_id(),
                   follows)
    recorder = _recorder()
    if recorder is not None:
        recorder.event(built.id, event, ts, labels, related_labels, body, follows)
    return built


_time = time.time
_from_ts = dt.datetime.fromtimestamp
_UTC = dt.UTC
_new = object.__new__
_set = object.__setattr__


def _built(name: str, occurred: dt.datetime, resource: dict[str, str],
           related: list[dict[str, str]], payload: dict[str, Any], id: uuid.UUID,
           follows: uuid.UUID | None) -> Event:
    """An ``Event`` of values ``emit_event`` has checked, without the frozen dataclass's
    ``__init__`` (a third of the cost of an emit from a task)."""
    built = _new(Event)
    _set(built, "event", name)
    _set(built, "occurred", occurred)
    _set(built, "resource", resource)
    _set(built, "related", related)
    _set(built, "payload", payload)
    _set(built, "id", id)
    _set(built, "follows", follows)
    _set(built, "received", None)
    return built


_SCALARS = (str, int, float, bool, type(None))


def _plainly_json(body: dict[str, Any]) -> bool:
    """A flat payload of string keys and scalar values, which needs no JSON trial run."""
    for key, value in body.items():
        if type(key) is not str or type(value) not in _SCALARS:
            return False
    return True


def _recorder() -> Any:
    """The flow run's recorder when there is one (no settings lookup), else the process's."""
    ctx = _flow_run.get()
    tracker = getattr(ctx, "tracker", None) if ctx is not None else None
    if tracker is not None:
        return tracker.recorder  # None when the record is off
    from fluvial.store import get_recorder

    return get_recorder()
