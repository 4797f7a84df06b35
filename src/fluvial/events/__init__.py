"""Events: what happened to which resource, recorded in order, read by automations.

    emit_event(event, resource, occurred=None, related=None, payload=None, id=None,
               follows=None) -> Event

as ``prefect.events``. Every flow run and task run state change is an event too
(``fluvial.flow-run.Completed``, ``fluvial.task-run.Failed``, ...), read from the
record's state history rather than written twice. Events are kept for
``FLUVIAL_EVENTS_RETENTION_DAYS`` (default 7); :func:`cleanup` removes older ones.
"""

from fluvial.events._emit import Event, emit_event
from fluvial.events._read import cleanup, read_since, stream

__all__ = ["Event", "cleanup", "emit_event", "read_since", "stream"]
