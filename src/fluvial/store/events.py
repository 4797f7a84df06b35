"""Events as stored: appended by the writer, read in sequence order, cleaned up by age.

Two streams make up the event log:

* ``events``: events emitted by code (``emit_event``, the CLI, the API), written by the
  recorder's writer in the same batches as runs and logs;
* ``state_history``: every state change of every flow run and task run, already in the
  record. :func:`read_state_events` reads it as ``fluvial.flow-run.<State>`` /
  ``fluvial.task-run.<State>`` events, so the engine pays nothing extra to emit them.

Both are ordered by their own ``seq``; a consumer keeps one position per stream
(``event_cursors``). Labels are stored as given; :mod:`fluvial.events` canonicalises
``prefect.*`` label names to ``fluvial.*`` before they get here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EventRow",
    "cleanup_events",
    "insert_events",
    "latest_positions",
    "read_events",
    "read_state_events",
]

_NAMESPACE = uuid.UUID("6f3d3a52-3f77-4c6e-9a0b-1f8f2d51c2a1")


@dataclass(frozen=True)
class EventRow:
    """One event, from either stream (``stream`` is ``"events"`` or ``"states"``)."""

    stream: str
    seq: int
    id: str
    event: str
    occurred: float
    received: float
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]
    follows: str | None = None

    @property
    def resource_id(self) -> str:
        return self.resource.get("fluvial.resource.id", "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.event, "occurred": self.occurred,
                "received": self.received, "resource": self.resource, "related": self.related,
                "payload": self.payload, "follows": self.follows, "stream": self.stream,
                "seq": self.seq}


# (id, event, occurred, received, resource_id, resource, related, payload, follows)
EventInsert = tuple[str, str, float, float, str, str, str, str, str | None]

_COLUMNS = "seq, id, event, occurred, received, resource, related, payload, follows"


def insert_events(conn: Any, rows: Sequence[EventInsert]) -> None:
    """Append events (and their related-resource rows) in the caller's transaction.

    An event whose id is already stored is skipped: emitting is idempotent by id.
    """
    if not rows:
        return
    conn.executemany(
        "INSERT INTO events (id, event, occurred, received, resource_id, resource, related, "
        "payload, follows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        rows,
    )
    related = [(role, rid, row[0]) for row in rows for role, rid in _related_ids(row[6])]
    if related:
        conn.executemany(
            "INSERT INTO event_resources (event_seq, role, resource_id) "
            "SELECT seq, ?, ? FROM events WHERE id = ?", related)


def _related_ids(related_json: str) -> Iterable[tuple[str, str]]:
    for item in json.loads(related_json):
        rid = item.get("fluvial.resource.id")
        if rid:
            yield item.get("fluvial.resource.role", ""), rid


def read_events(conn: Any, after_seq: int, limit: int = 1000,
                names: Sequence[str] | None = None) -> list[EventRow]:
    """Stored events with ``seq > after_seq``, oldest first; ``names``: exact event names."""
    sql = f"SELECT {_COLUMNS} FROM events WHERE seq > ?"
    args: list[Any] = [after_seq]
    if names:
        sql += f" AND event IN ({', '.join('?' for _ in names)})"
        args.extend(names)
    rows = conn.execute(sql + f" ORDER BY seq LIMIT {int(limit)}", args).fetchall()
    return [EventRow("events", r[0], r[1], r[2], r[3], r[4], json.loads(r[5]),
                     json.loads(r[6]), json.loads(r[7]), r[8]) for r in rows]


def read_state_events(conn: Any, after_seq: int, limit: int = 1000,
                      flow_runs: bool = True, task_runs: bool = True,
                      ) -> list[tuple[int, float, EventRow | None]]:
    """State changes with ``seq > after_seq`` as ``(seq, ts, event)``, oldest first.

    ``event`` is None for a state whose run row is not recorded (yet: rows and
    states may arrive in different batches) or is of a kind not asked for:
    ``flow_runs``/``task_runs`` select the kinds, and the other is not even joined.
    """
    if not (flow_runs or task_runs):
        return []
    joins = []
    cols = ["sh.seq", "sh.run_id", "sh.type", "sh.name", "sh.message", "sh.ts"]
    if flow_runs:
        joins.append("LEFT JOIN flow_runs fr ON fr.id = sh.run_id")
        cols += ["fr.name", "fr.flow_name", "fr.tags", "fr.deployment_id"]
    else:
        cols += ["NULL", "NULL", "NULL", "NULL"]
    if task_runs:
        joins.append("LEFT JOIN task_runs tr ON tr.id = sh.run_id")
        cols += ["tr.name", "tr.task_key", "tr.tags", "tr.flow_run_id"]
    else:
        cols += ["NULL", "NULL", "NULL", "NULL"]
    sql = (f"SELECT {', '.join(cols)} FROM state_history sh {' '.join(joins)} "
           f"WHERE sh.seq > ? ORDER BY sh.seq LIMIT {int(limit)}")
    return [(int(row[0]), float(row[5]), _state_event(row))
            for row in conn.execute(sql, (after_seq,)).fetchall()]


def _state_event(row: Sequence[Any]) -> EventRow | None:
    seq, run_id, type_, name, message, ts = row[:6]
    flow_name, task_name = row[7], row[10]
    state_name = name or str(type_).title()
    payload = {"validated_state": {"type": type_, "name": state_name, "message": message}}
    if flow_name is not None:
        kind, run_name, tags = "flow-run", row[6], row[8]
        related = [{"fluvial.resource.id": f"fluvial.flow.{flow_name}",
                    "fluvial.resource.role": "flow", "fluvial.resource.name": flow_name}]
        if row[9]:
            related.append({"fluvial.resource.id": f"fluvial.deployment.{row[9]}",
                            "fluvial.resource.role": "deployment"})
    elif task_name is not None:
        kind, run_name, tags = "task-run", row[10], row[12]
        related = []
        if row[13]:
            related.append({"fluvial.resource.id": f"fluvial.flow-run.{row[13]}",
                            "fluvial.resource.role": "flow-run"})
        related.append({"fluvial.resource.id": f"fluvial.task.{row[11]}",
                        "fluvial.resource.role": "task", "fluvial.resource.name": row[11]})
    else:
        return None
    for tag in json.loads(tags) if tags else ():
        related.append({"fluvial.resource.id": f"fluvial.tag.{tag}",
                        "fluvial.resource.role": "tag"})
    resource = {"fluvial.resource.id": f"fluvial.{kind}.{run_id}",
                "fluvial.resource.name": str(run_name),
                "fluvial.state-type": str(type_), "fluvial.state-name": state_name}
    event_id = str(uuid.uuid5(_NAMESPACE, f"{run_id}:{seq}"))
    return EventRow("states", int(seq), event_id, f"fluvial.{kind}.{state_name}", float(ts),
                    float(ts), resource, related, payload)


def latest_positions(conn: Any) -> tuple[int, int]:
    """The newest ``seq`` of each stream: (events, states); 0 when empty."""
    events = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    states = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM state_history").fetchone()[0]
    return int(events), int(states)


def cleanup_events(conn: Any, older_than: float) -> int:
    """Delete events received before ``older_than`` (and their resource rows); how many."""
    conn.execute("DELETE FROM event_resources WHERE event_seq IN "
                 "(SELECT seq FROM events WHERE received < ?)", (older_than,))
    return int(conn.execute("DELETE FROM events WHERE received < ?", (older_than,)).rowcount)
