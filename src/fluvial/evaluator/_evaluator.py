"""The evaluator: reads the event log in order, decides firings, runs their actions.

One pass (:meth:`Evaluator.run_once`) is two steps:

1. **Decide**, in one write transaction: read the shared cursor (``event_cursors``),
   read the events after it, update each automation's buckets
   (``automation_buckets``: counts, windows, arming), insert a firing per trigger that
   fired under a unique key (``automation_firings``: the automation, the bucket, and
   the triggering event's id or the window's start), and move the cursor. Writes hold
   the store's write lock, so two evaluators decide one after the other and the second
   starts where the first stopped; a pass killed halfway rolls back whole and the next
   pass decides the same events again, under the same keys.
2. **Act**: claim each pending firing (``UPDATE ... WHERE status = 'pending'``: one
   claimer wins), run its actions, mark it done (or failed, with the error). A firing
   claimed by an evaluator that died is claimed again after ``lease_seconds``: actions
   run at least once, and ``RunDeployment`` exactly once (the firing key is the run's
   idempotency key).

Time comes from an injectable ``clock`` (Proactive windows close when the clock says
so); windows are measured on the time events were *received*, so an ``occurred`` a
little in the future or past does not move them. It runs in workers and ``serve()``
(each poll), in ``fluvial automation evaluate`` and, later, in the server.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from fluvial.automations._model import Automation, list_automations
from fluvial.automations._triggers import CompoundTrigger, EventTrigger, SequenceTrigger
from fluvial.evaluator._execute import execute
from fluvial.events._matching import labels_match, name_matches, related_match
from fluvial.store.events import EventRow

__all__ = ["Evaluator"]

logger = logging.getLogger("fluvial.automations")

CURSOR = "automations"
CLEANUP_EVERY_S = 86400.0


def _event_matches(t: EventTrigger, e: EventRow, names: set[str]) -> bool:
    if names and not any(name_matches(p, e.event) for p in names):
        return False
    return labels_match(t.match, e.resource) and related_match(t.related_specs, e.related)


def _bucket(t: EventTrigger, e: EventRow) -> str:
    if not t.for_each:
        return ""
    return json.dumps({label: e.resource.get(label) for label in sorted(t.for_each)})


def _patterns(automations: list[Automation]) -> list[str]:
    out: list[str] = []
    for a in automations:
        children = a.trigger.triggers if not isinstance(a.trigger, EventTrigger) else [a.trigger]
        for t in children:
            out += list(t.expect | t.after) or ["*"]
    return out


def _could_match(patterns: list[str], prefix: str) -> bool:
    """Whether any pattern can match an event name that starts with ``prefix``."""
    return any(p == "*" or p.startswith(prefix) or (p.endswith("*") and prefix.startswith(p[:-1]))
               for p in patterns)


class _Pass:
    """The state one decide step works on: buckets loaded on demand, firings to insert."""

    def __init__(self, conn: Any, now: float) -> None:
        self.conn = conn
        self.now = now
        self.buckets: dict[tuple[str, str], dict[str, Any]] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.firings: list[tuple[str, str, str | None, dict[str, Any]]] = []

    def state(self, automation_id: str, bucket: str) -> dict[str, Any]:
        key = (automation_id, bucket)
        if key not in self.buckets:
            row = self.conn.execute(
                "SELECT state FROM automation_buckets WHERE automation_id = ? AND bucket = ?",
                key).fetchone()
            self.buckets[key] = json.loads(row[0]) if row else {}
        self.dirty.add(key)
        return self.buckets[key]

    def all_buckets(self, automation_id: str) -> list[str]:
        stored = {r[0] for r in self.conn.execute(
            "SELECT bucket FROM automation_buckets WHERE automation_id = ?", (automation_id,))}
        return sorted(stored | {b for a, b in self.buckets if a == automation_id})

    def fire(self, automation: Automation, key: str, event: EventRow | None,
             context: dict[str, Any]) -> None:
        body = {"event": event.to_dict() if event is not None else None, **context}
        self.firings.append((f"{automation.id}|{key}", automation.id,
                             event.id if event else None, body))

    def save(self) -> None:
        for automation_id, bucket in self.dirty:
            self.conn.execute(
                "INSERT INTO automation_buckets (automation_id, bucket, state, updated) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (automation_id, bucket) "
                "DO UPDATE SET state = excluded.state, updated = excluded.updated",
                (automation_id, bucket, json.dumps(self.buckets[(automation_id, bucket)]),
                 self.now))
        for key, automation_id, event_id, body in self.firings:
            self.conn.execute(
                "INSERT INTO automation_firings (key, automation_id, fired_at, "
                "triggering_event, context, status) VALUES (?, ?, ?, ?, ?, 'pending') "
                "ON CONFLICT (key) DO NOTHING",
                (key, automation_id, self.now, event_id, json.dumps(body, default=str)))


class Evaluator:
    """Evaluates every enabled automation against the event log (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time, batch_size: int = 500,
                 lease_seconds: float = 60.0, name: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.clock = clock
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._conn: Any = None
        self._last_cleanup = 0.0

    # -- the loop ------------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass: decide until the log is read, then act; the number of firings run."""
        conn = self._connection()
        executed = 0
        while True:  # batch by batch, so a long backlog does not hold actions back
            read = self.decide(conn)
            executed += self.act(conn)
            if read < self.batch_size:
                break
        now = self.clock()
        if now - self._last_cleanup >= CLEANUP_EVERY_S:
            from fluvial.events import cleanup

            self._last_cleanup = now
            cleanup(now=now)
        return executed

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> Any:
        if self._conn is None:
            from fluvial.store.connection import open_database

            self._conn = open_database()
        return self._conn

    # -- decide --------------------------------------------------------------------------

    def decide(self, conn: Any) -> int:
        """One batch of events decided and committed; how many events were read."""
        from fluvial.events._read import read_since
        from fluvial.store.connection import transaction
        from fluvial.store.events import latest_positions

        with transaction(conn):
            now = self.clock()
            row = conn.execute("SELECT events_seq, states_seq FROM event_cursors WHERE name = ?",
                               (CURSOR,)).fetchone()
            automations = list_automations(conn, enabled_only=True)
            if row is None or not automations:
                # nothing to evaluate: what happened so far is not for later automations
                self._write_cursor(conn, latest_positions(conn), now, insert=row is None)
                if not automations:
                    return 0
                row = latest_positions(conn)
            patterns = _patterns(automations)
            events, positions = read_since(
                conn, (int(row[0]), int(row[1])), self.batch_size,
                flow_runs=_could_match(patterns, "fluvial.flow-run."),
                task_runs=_could_match(patterns, "fluvial.task-run."),
                emitted=True, now=now)
            work = _Pass(conn, now)
            for event in events:
                for automation in automations:
                    if automation.created is not None and event.received < automation.created:
                        continue
                    self._react(work, automation, event)
            caught_up = len(events) < self.batch_size
            if caught_up:
                for automation in automations:
                    self._close_windows(work, automation)
            work.save()
            self._write_cursor(conn, positions, now)
        return len(events)

    @staticmethod
    def _write_cursor(conn: Any, positions: tuple[int, int], now: float,
                      insert: bool = False) -> None:
        if insert:
            conn.execute("INSERT INTO event_cursors (name, events_seq, states_seq, updated) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                         (CURSOR, positions[0], positions[1], now))
        else:
            conn.execute("UPDATE event_cursors SET events_seq = ?, states_seq = ?, updated = ? "
                         "WHERE name = ?", (positions[0], positions[1], now, CURSOR))

    def _react(self, work: _Pass, automation: Automation, e: EventRow) -> None:
        t = automation.trigger
        if isinstance(t, CompoundTrigger):
            self._compound(work, automation, t, e)
        elif isinstance(t, SequenceTrigger):
            self._sequence(work, automation, t, e)
        elif t.posture == "Proactive":
            self._proactive_event(work, automation, t, e)
        else:
            self._reactive(work, automation, t, e)

    def _reactive(self, work: _Pass, a: Automation, t: EventTrigger, e: EventRow) -> None:
        armed_by = t.after and _event_matches(t, e, t.after)
        expected = _event_matches(t, e, t.expect)
        if not (armed_by or expected):
            return
        bucket = _bucket(t, e)
        state = work.state(a.id, bucket)
        if armed_by:
            state["armed"] = True
        if not expected or (t.after and not state.get("armed")):
            return
        within = t.within.total_seconds()
        start = state.get("start")
        if start is None or (within > 0 and e.received - start > within):
            state["start"], state["count"] = e.received, 0
        state["count"] = state.get("count", 0) + 1
        if state["count"] >= t.threshold:
            work.fire(a, f"{bucket}|{e.id}", e, {"count": state["count"]})
            state["start"], state["count"] = None, 0
            if t.after:
                state["armed"] = False

    def _proactive_event(self, work: _Pass, a: Automation, t: EventTrigger, e: EventRow) -> None:
        armed_by = t.after and _event_matches(t, e, t.after)
        expected = _event_matches(t, e, t.expect)
        if not (armed_by or expected):
            return
        state = work.state(a.id, _bucket(t, e))
        if expected and (not t.after or state.get("start") is not None):
            state["start"] = e.received  # it arrived: the next window starts now
        elif armed_by:
            state["start"] = e.received

    def _close_windows(self, work: _Pass, a: Automation) -> None:
        t = a.trigger
        if not isinstance(t, EventTrigger) or t.posture != "Proactive":
            return
        within = t.within.total_seconds()
        buckets = work.all_buckets(a.id)
        if not t.for_each and not t.after and "" not in buckets:
            work.state(a.id, "")["start"] = a.created or work.now  # armed since created
            buckets.append("")
        for bucket in buckets:
            state = work.state(a.id, bucket)
            start = state.get("start")
            if start is None or work.now - start < within:
                continue
            elapsed = int((work.now - start) // within)
            window_end = start + elapsed * within
            work.fire(a, f"{bucket}|window|{start!r}", None,
                      {"window_start": start, "window_end": start + within,
                       "bucket": bucket})
            state["start"] = None if t.after else window_end

    def _compound(self, work: _Pass, a: Automation, t: CompoundTrigger, e: EventRow) -> None:
        hits = [i for i, child in enumerate(t.triggers) if _event_matches(child, e, child.expect)]
        if not hits:
            return
        state = work.state(a.id, "")
        matched: dict[str, float] = state.setdefault("matched", {})
        for i in hits:
            matched[str(i)] = e.received
        within = t.within.total_seconds()
        if within > 0:
            for old in [k for k, ts in matched.items() if e.received - ts > within]:
                del matched[old]
        if len(matched) >= t.required:
            work.fire(a, f"|{e.id}", e, {"matched": sorted(int(i) for i in matched)})
            state["matched"] = {}

    def _sequence(self, work: _Pass, a: Automation, t: SequenceTrigger, e: EventRow) -> None:
        state = work.state(a.id, "")
        step, start = state.get("next", 0), state.get("start")
        within = t.within.total_seconds()
        if start is not None and within > 0 and e.received - start > within:
            step, start = 0, None
        child = t.triggers[step]
        if not _event_matches(child, e, child.expect):
            if step and _event_matches(t.triggers[0], e, t.triggers[0].expect):
                step, start = 1, e.received  # a new first step restarts the sequence
            state["next"], state["start"] = step, start
            return
        if step == 0:
            start = e.received
        step += 1
        if step == len(t.triggers):
            work.fire(a, f"|{e.id}", e, {"sequence_start": start})
            step, start = 0, None
        state["next"], state["start"] = step, start

    # -- act -----------------------------------------------------------------------------

    def act(self, conn: Any) -> int:
        """Claim and run pending firings (and ones whose claimer's lease lapsed)."""
        from fluvial.store.connection import transaction

        now = self.clock()
        stale = now - self.lease_seconds
        rows = conn.execute(
            "SELECT key, automation_id, context FROM automation_firings "
            "WHERE status = 'pending' OR (status = 'running' AND claimed_at < ?) "
            "ORDER BY fired_at, key LIMIT 200", (stale,)).fetchall()
        executed = 0
        automations = {a.id: a for a in list_automations(conn)} if rows else {}
        for key, automation_id, context in rows:
            with transaction(conn):
                claimed = conn.execute(
                    "UPDATE automation_firings SET status = 'running', claimed_by = ?, "
                    "claimed_at = ? WHERE key = ? AND (status = 'pending' OR "
                    "(status = 'running' AND claimed_at < ?))",
                    (self.name, now, key, stale)).rowcount
            if not claimed:
                continue  # another evaluator has it
            status, error = self._run_actions(automations.get(automation_id), key,
                                              json.loads(context))
            with transaction(conn):
                conn.execute("UPDATE automation_firings SET status = ?, finished_at = ?, "
                             "error = ? WHERE key = ? AND claimed_by = ?",
                             (status, self.clock(), error, key, self.name))
            executed += 1
        return executed

    def _run_actions(self, automation: Automation | None, key: str,
                     context: dict[str, Any]) -> tuple[str, str | None]:
        if automation is None:
            return "skipped", "the automation was deleted"
        event = _event_from(context.get("event"), automation, context)
        errors = []
        for i, action in enumerate(automation.actions):
            try:
                done = execute(action, event, automation, key)
                logger.info("Automation %r fired: %s", automation.name, done)
            except Exception as exc:  # noqa: BLE001 - one failing action must not stop the rest
                errors.append(f"action {i} ({action.type}): {type(exc).__name__}: {exc}")
                logger.warning("Automation %r: action %d (%s) failed: %s", automation.name,
                               i, action.type, exc)
        return ("failed", "; ".join(errors)) if errors else ("done", None)


def _event_from(data: dict[str, Any] | None, automation: Automation,
                context: dict[str, Any]) -> EventRow:
    if data is not None:
        return EventRow(data["stream"], data["seq"], data["id"], data["event"],
                        data["occurred"], data["received"], data["resource"], data["related"],
                        data["payload"], data.get("follows"))
    # a Proactive firing: the event that did not come, described
    now = context.get("window_end", time.time())
    return EventRow("automations", 0, str(uuid.uuid4()), "fluvial.automation.triggered",
                    now, now, {"fluvial.resource.id": f"fluvial.automation.{automation.id}",
                               "fluvial.resource.name": automation.name},
                    [], {k: v for k, v in context.items() if k != "event"})
