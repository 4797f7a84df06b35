"""A batch of recorder events: the event kinds, turned into rows, committed in one transaction.

This is the writer's half of the recorder: everything the hot path skipped
(UUID formatting, parameter summaries, JSON tags, pid and hostname) is done
here. Within a batch, runs are inserted before states, so the order the engine
appended them in does not matter. :class:`BatchWriter` commits one batch per
transaction, retrying transient failures; it serves both the writer process
(:mod:`fluvial.store.writer.process`) and the in-thread writer the recorder
falls back to when no process can be started.
"""

from __future__ import annotations

import json
import logging
import reprlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fluvial.exceptions import StoreError
from fluvial.store import events as event_rows
from fluvial.store import rows
from fluvial.store.connection import Connection, DatabaseTarget, connect, is_transient, transaction
from fluvial.store.dialects import SQLITE, dialect_of
from fluvial.store.schema import FINAL_STATE_TYPES
from fluvial.store.writer.wire import uuid_text

__all__ = [
    "FLOW_RUN",
    "RETRIES",
    "CHUNK",
    "BatchWriter",
    "EDGES",
    "EVENT",
    "HEARTBEAT",
    "LOG",
    "STATE",
    "TASK_RUN",
    "TASK_RUN_DONE",
    "Prepared",
    "apply",
    "prepare",
    "summarize_parameters",
    "write_events",
]

# Event tuples, as the recorder appends them:
FLOW_RUN = 0  # (FLOW_RUN, id, name, flow_name, parameters, tags, parent_task_run_id, ts)
#                parameters: a mapping, or the str summarize_parameters() made of it
TASK_RUN = 1  # (TASK_RUN, id, flow_run_id, name, task_key, tags, ts)
STATE = 2  # (STATE, run_id, type, name, message, ts, result_location)
LOG = 3  # (LOG, run_id, level, message, ts)
HEARTBEAT = 4  # (HEARTBEAT, flow_run_id, ts)
# Run ids are UUIDs (or their text); a TASK_RUN_DONE's own id may also be the UUID's
# 128-bit int (the recorder sends that: an int is pickled without a Python call).
# A settled task run in one event: (TASK_RUN_DONE, id, flow_run_id, name, task_key, tags,
# start_ts or None, state type, state name, message, end_ts[, default_name]) — a TASK_RUN, a
# RUNNING state (when start_ts is known) and the final state, in one tuple on the hot
# path. With default_name true, ``name`` is the task's name and the run's name is
# the default ``"{name}-{last 8 hex digits of the id}"`` (as Task.render_run_name makes it),
# made here, off the hot path.
TASK_RUN_DONE = 5
# An emitted event: (EVENT, id, event name, occurred, resource, related, payload, follows);
# the id a UUID, its text or (as the recorder sends it) its 128-bit int;
# resource a dict, related a list of dicts, payload a dict; received is the commit time.
EVENT = 6
# Which task runs fed a task run (its data upstreams and wait_for):
# (EDGES, flow_run_id, downstream task run id, sequence of upstream task run ids)
EDGES = 7

logger = logging.getLogger("fluvial.store")

MAX_PARAMETERS = 50
MAX_REPR = 200

_repr = reprlib.Repr()
_repr.maxstring = MAX_REPR
_repr.maxother = MAX_REPR
_repr.maxlevel = 3
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 20
_repr.maxdict = 20


def _safe_repr(value: Any) -> str:
    try:
        text = _repr.repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def summarize_parameters(parameters: Mapping[str, Any] | None) -> str:
    """A JSON object of ``name -> truncated repr``, at most ``MAX_PARAMETERS`` entries."""
    if not parameters:
        return "{}"
    try:
        items = list(parameters.items())
    except Exception:
        return json.dumps({"...": _safe_repr(parameters)})
    summary: dict[str, str] = {}
    for name, value in items[:MAX_PARAMETERS]:
        summary[str(name)[:MAX_REPR]] = _safe_repr(value)
    if len(items) > MAX_PARAMETERS:
        summary["..."] = f"{len(items) - MAX_PARAMETERS} more parameters"
    return json.dumps(summary)


def _tags(tags: Iterable[Any] | None) -> str:
    return json.dumps([str(t) for t in tags]) if tags else "[]"


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _fold(
    latest: dict[str, list],
    run: str,
    type_: str,
    name: str | None,
    message: str | None,
    ts: float,
    location: str | None,
) -> None:
    """Keep the latest state of ``run`` (ties go to the later one) and its first RUNNING."""
    current = latest.get(run)
    if current is None:
        latest[run] = [type_, name, message, ts, ts if type_ == "RUNNING" else None, location]
        return
    if ts >= current[3]:
        current[0], current[1], current[2], current[3], current[5] = (
            type_,
            name,
            message,
            ts,
            location,
        )
    if type_ == "RUNNING" and (current[4] is None or ts < current[4]):
        current[4] = ts


def _state_columns(folded: list | None) -> rows.LatestState:
    if folded is None:
        return rows.NO_STATE
    type_, name, message, ts, start, location = folded
    return (type_, name, message, ts, start, ts if type_ in FINAL_STATE_TYPES else None, location)


class Prepared:
    """A batch turned into rows, ready to write: everything that needs no database.

    Built by :func:`prepare` (pure Python, no database) and written by :func:`apply`.
    Runs settled in one event and touched by nothing else in the batch need no folding
    (their latest state is known): ``completed`` holds those that ran and completed
    plainly (``(id, flow_run_id, name, task_key, tags, start, end)``: the common case,
    written with their constant columns in the SQL), ``settled`` the task_runs rows of
    the others and ``running``/``finals`` their states; everything else goes the general
    way.
    """

    __slots__ = ("beats", "completed", "edges", "emitted", "finals", "flows", "latest",
                 "log_rows", "running", "settled", "skipped", "state_rows", "tasks")

    def __init__(self) -> None:
        self.flows: dict[str, tuple] = {}
        self.tasks: dict[str, tuple] = {}
        self.completed: dict[str, tuple[str, str | None, str, str, str, float, float]] = {}
        self.settled: dict[str, tuple] = {}
        self.running: list[tuple[str, float]] = []
        self.finals: list[tuple[str, str, str | None, str | None, float]] = []
        self.state_rows: list[rows.StateRow] = []
        self.log_rows: list[rows.LogRow] = []
        self.beats: dict[str, float] = {}
        self.latest: dict[str, list] = {}
        self.emitted: list[event_rows.EventInsert] = []
        self.edges: list[tuple[str | None, str, str]] = []
        self.skipped = 0

    def unsettle(self, run: str) -> None:
        """A settled run another event of the batch touches: from now on, the general way."""
        done = self.completed.pop(run, None)
        if done is not None:  # its states are written as a settled run's, before the others
            start, end = done[5], done[6]
            self.running.append((run, start))
            self.finals.append((run, "COMPLETED", "Completed", None, end))
            self.tasks[run] = done[:6]
            self.latest[run] = ["COMPLETED", "Completed", None, end, start, None]
            return
        row = self.settled.pop(run)
        self.tasks[run] = row[:6]
        # (type, name, message, ts, first RUNNING, result location), as _fold keeps it
        self.latest[run] = [row[6], row[7], row[8], row[9], row[10], None]


def prepare(events: Iterable[tuple], pid: int, hostname: str) -> Prepared:
    """The rows of ``events`` (a malformed event is skipped, counted and logged)."""
    batch = Prepared()
    flows, tasks, settled, latest = batch.flows, batch.tasks, batch.settled, batch.latest
    completed = batch.completed
    state_rows = batch.state_rows
    tag_text: dict[int, tuple[Any, str]] = {}  # a map's runs share one tags object
    final_types = FINAL_STATE_TYPES
    for event in events:
        try:
            kind = event[0]
            if kind == TASK_RUN_DONE:  # the common case: a task run, settled, in one event
                if len(event) == 12:
                    _, run_id, flow_run_id, name, task_key, tags, start, type_, state, \
                        message, end, default_name = event
                else:
                    _, run_id, flow_run_id, name, task_key, tags, start, type_, state, \
                        message, end, *rest = event
                    default_name = rest[0] if rest else False
                if type(run_id) is int:  # uuid_text(), inline: once per run
                    h = f"{run_id:032x}"
                    run = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                else:
                    run = str(run_id)
                if default_name:
                    name = f"{name}-{run[-8:]}"
                elif type(name) is not str:
                    name = str(name)
                if type(task_key) is not str:
                    task_key = str(task_key)
                if type(flow_run_id) is not str:
                    flow_run_id = _id(flow_run_id)
                if not tags:
                    tags_json = "[]"
                else:
                    known = tag_text.get(id(tags))
                    if known is None or known[0] is not tags:
                        known = tag_text[id(tags)] = (tags, _tags(tags))
                    tags_json = known[1]
                if (type_ == "COMPLETED" and state == "Completed" and message is None
                        and type(start) is float and type(end) is float and end >= start
                        and run not in completed and run not in settled
                        and run not in latest and run not in tasks):
                    # ran, then completed plainly, and nothing else of it so far: no folding
                    completed[run] = (run, flow_run_id, name, task_key, tags_json, start, end)
                    continue
                type_ = type_ if type(type_) is str else str(getattr(type_, "value", type_))
                state, message, end = _text(state), _text(message), float(end)
                start = None if start is None else float(start)
                created = end if start is None else start
                base = (run, flow_run_id, name, task_key, tags_json, created)
                if run in completed or run in settled:
                    batch.unsettle(run)
                if run not in latest and run not in tasks and (start is None or end >= start):
                    if start is not None:
                        batch.running.append((run, start))
                    batch.finals.append((run, type_, state, message, end))
                    # the latest state: what folding RUNNING at start, then this, gives
                    first_running = end if start is None and type_ == "RUNNING" else start
                    settled[run] = base + (type_, state, message, end, first_running,
                                           end if type_ in final_types else None, None)
                    continue
                final = (run, type_, state, message, end, None)
                if start is not None:
                    running = (run, "RUNNING", "Running", None, start, None)
                    state_rows.append(running)
                    _fold(latest, *running)
                state_rows.append(final)
                _fold(latest, *final)
                tasks[run] = base
            elif kind == STATE:
                _, run_id, type_, name, message, ts, location = event
                row = (
                    str(run_id),
                    str(getattr(type_, "value", type_)),
                    _text(name),
                    _text(message),
                    float(ts),
                    _text(location),
                )
                if row[0] in settled or row[0] in completed:
                    batch.unsettle(row[0])
                state_rows.append(row)
                _fold(latest, *row)
            elif kind == TASK_RUN:
                _, run_id, flow_run_id, name, task_key, tags, ts = event
                run = str(run_id)
                if run in settled or run in completed:
                    batch.unsettle(run)
                tasks[run] = (
                    run,
                    _id(flow_run_id),
                    str(name),
                    str(task_key),
                    _tags(tags),
                    float(ts),
                )
            elif kind == LOG:
                _, run_id, level, message, ts = event
                batch.log_rows.append((_id(run_id), int(level), str(message), float(ts)))
            elif kind == FLOW_RUN:
                _, run_id, name, flow_name, parameters, tags, parent, ts = event
                run = str(run_id)
                flows[run] = (
                    run,
                    str(name),
                    str(flow_name),
                    # a str: summarized by the driver already (see recorder)
                    parameters if type(parameters) is str else summarize_parameters(parameters),
                    _tags(tags),
                    _id(parent),
                    float(ts),
                    pid,
                    hostname,
                    float(ts),
                )
            elif kind == HEARTBEAT:
                run = str(event[1])
                batch.beats[run] = max(batch.beats.get(run, 0.0), float(event[2]))
            elif kind == EDGES:
                _, flow_run_id, downstream, upstreams = event
                flow, down = _id(flow_run_id), str(downstream)
                batch.edges.extend((flow, str(up), down) for up in upstreams)
            elif kind == EVENT:
                _, event_id, name, occurred, resource, related, payload, follows = event
                batch.emitted.append((
                    uuid_text(event_id) if type(event_id) is int else str(event_id),
                    str(name), float(occurred), time.time(),
                    str(resource.get("fluvial.resource.id", "")),
                    json.dumps(resource), json.dumps(related), json.dumps(payload, default=str),
                    _id(follows),
                ))
        except Exception as exc:  # one malformed call must not lose the batch
            batch.skipped += 1
            logger.warning(
                "fluvial store: skipped a malformed event %s: %s", _safe_repr(event), exc
            )
    return batch


def apply(conn: Connection, batch: Prepared) -> int:
    """Write a prepared batch into the caller's open transaction; how many events it skipped.

    A run created in this batch gets its latest state folded in Python; any
    other run a state touches is refreshed from its whole history in SQL.
    """
    flows, tasks, latest = batch.flows, batch.tasks, batch.latest
    # Runs that existed already, or whose states came first (from another process),
    # cannot take their state from this batch alone.
    stale_flows = rows.stale(conn, "flow_runs", flows)
    completed = list(batch.completed.values())
    stale_tasks = rows.stale(conn, "task_runs", [*batch.completed, *batch.settled, *tasks])
    rows.insert_flow_runs(
        conn, [row + _state_columns(latest.get(run)) for run, row in flows.items()]
    )
    rows.insert_completed_task_runs(conn, completed)
    rows.insert_task_runs(conn, list(batch.settled.values()))
    rows.insert_task_runs(
        conn, [row + _state_columns(latest.get(run)) for run, row in tasks.items()]
    )
    # settled runs' states first: they came before any other state of theirs in the batch
    rows.insert_completed_states(conn, completed)
    rows.insert_settled_states(conn, batch.running, batch.finals)
    rows.insert_states(conn, batch.state_rows)
    rows.insert_logs(conn, batch.log_rows)
    event_rows.insert_events(conn, batch.emitted)
    if batch.edges:
        rows.insert_edges(conn, batch.edges)
    if batch.beats:
        rows.update_heartbeats(conn, ((ts, run) for run, ts in batch.beats.items()))
    # States of runs created in earlier batches, of either kind.
    earlier = latest.keys() - flows.keys() - tasks.keys()
    earlier_flows = rows.existing(conn, "flow_runs", earlier)
    rows.apply_latest(
        conn, "flow_runs", [(run, _state_columns(latest[run])) for run in earlier_flows]
    )
    rows.apply_latest(
        conn,
        "task_runs",
        [(run, _state_columns(latest[run])) for run in earlier - earlier_flows],
    )
    rows.refresh_flow_runs(conn, stale_flows)
    rows.refresh_task_runs(conn, stale_tasks)
    return batch.skipped


def write_events(conn: Connection, events: Iterable[tuple], pid: int, hostname: str) -> int:
    """Write ``events`` into the caller's open transaction; return how many were skipped."""
    return apply(conn, prepare(events, pid, hostname))


RETRIES = 3
CHUNK = 250  # events prepared and applied at a time, between looks at the urgent lane


class BatchWriter:
    """Writes batches of recorder events for the driver ``pid`` on ``hostname``.

    Never drops a batch: one the database will not take after retries with backoff
    (``retry_seconds`` in all) goes to the writer's spill journal
    (:mod:`fluvial.store.writer.journal`), and so does every later batch, in order,
    until the journal has been replayed (tried again before each batch, with backoff)."""

    retry_seconds = 5.0  # how long one batch is retried before it is spilled
    replay_backoff_max = 5.0  # the longest wait between two replays of the journal

    def __init__(self, target: DatabaseTarget, conn: Connection, pid: int, hostname: str) -> None:
        from fluvial.store.writer.journal import Journal

        self.target = target
        self.conn = conn
        self.pid = pid
        self.hostname = hostname
        self.journal = Journal(target.url, pid, hostname)
        self.events_spilled = 0
        self._next_replay = 0.0
        self._replay_wait = 0.1
        self._checkpoint_deferred: int | None = None  # the pages it checkpoints at, when off

    def commit(self, events: Sequence[tuple]) -> tuple[int, BaseException | None]:
        """Commit ``events`` in one transaction, or keep them in the journal.

        Returns ``(skipped, None)`` once written (to the database or the journal), or
        ``(0, error)`` when neither would take them (then nothing of the batch is kept).
        """
        if self.journal.pending and not self._replay():
            return self._spill(events, None)
        deadline = time.monotonic() + self.retry_seconds
        wait = 0.05
        while True:
            skipped, error = self.commit_once(events)
            if error is None:
                return skipped, None
            if time.monotonic() + wait > deadline:
                return self._spill(events, error)
            time.sleep(wait)
            wait = min(wait * 2, 1.0)
            self._reconnect()

    def commit_yielding(self, events: Sequence[tuple], urgent: Callable[[], bool],
                        chunk: int = CHUNK) -> tuple[int, BaseException | None, Sequence[tuple]]:
        """Commit ``events`` like :meth:`commit`, but give way to an urgent batch.

        The events are prepared and applied ``chunk`` at a time, in one transaction;
        when ``urgent()`` is true after a chunk and events remain, what was applied is
        committed and the rest returned: ``(skipped, error, rest)``, the caller commits
        the urgent batch, then calls again with ``rest``. A transaction that fails is
        rolled back and its events go the ordinary way (:meth:`commit`: retried, else
        spilled), with nothing left over.
        """
        self._checkpoint_again()
        if self.journal.pending or len(events) <= chunk:
            return (*self.commit(events), ())
        skipped = done = 0
        try:
            with transaction(self.conn):
                while done < len(events):
                    skipped += apply(self.conn, prepare(events[done:done + chunk], self.pid,
                                                        self.hostname))
                    done += chunk
                    if done < len(events) and urgent():
                        # SQLite: this commit and the urgent batch's leave the WAL's
                        # checkpoint (tens of ms) to the commits after them
                        self._defer_checkpoint()
                        break
        except Exception:  # retried the ordinary way, which says what went wrong
            self._checkpoint_again()
            return (*self.commit(events), ())
        return skipped, None, events[done:]

    def _defer_checkpoint(self) -> None:
        """No WAL checkpoint at the next commits, until :meth:`_checkpoint_again`."""
        if dialect_of(self.conn) == SQLITE and self._checkpoint_deferred is None:
            pages = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            self.conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpoint_deferred = int(pages)

    def _checkpoint_again(self) -> None:
        """The WAL checkpointed at commits again, as before :meth:`_defer_checkpoint`."""
        pages, self._checkpoint_deferred = self._checkpoint_deferred, None
        if pages is not None:
            try:
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
            except Exception:  # a connection gone: its replacement checkpoints as usual
                pass

    def commit_once(self, events: Sequence[tuple]) -> tuple[int, BaseException | None]:
        """One try (a few for transient errors): ``(skipped, None)``, or ``(0, error)``."""
        return self._apply_once(prepare(events, self.pid, self.hostname))

    def _apply_once(self, prepared: Prepared) -> tuple[int, BaseException | None]:
        for attempt in range(RETRIES):
            try:
                with transaction(self.conn):
                    skipped = apply(self.conn, prepared)
            except Exception as exc:  # never let the writer die
                if attempt + 1 < RETRIES and is_transient(exc) and self._usable():
                    continue
                return 0, exc
            return skipped, None
        raise AssertionError("unreachable")  # pragma: no cover

    def _replay(self, force: bool = False) -> bool:
        """Write the journal into the database, if it is time to try; True once empty."""
        now = time.monotonic()
        if not force and now < self._next_replay:
            return False
        self._reconnect()
        if self.journal.replay(self.commit_once):
            self._replay_wait = 0.1
            logger.warning("fluvial store: the database takes writes again; the spilled "
                           "batches are written")
            return True
        self._next_replay = now + self._replay_wait
        self._replay_wait = min(self._replay_wait * 2, self.replay_backoff_max)
        return False

    def _spill(self, events: Sequence[tuple],
               error: BaseException | None) -> tuple[int, BaseException | None]:
        first = not self.journal.pending
        try:
            path = self.journal.append(events)
        except OSError as exc:
            logger.warning("fluvial store: dropped a batch of %d events: %s (and the spill "
                           "journal cannot take it: %s)", len(events), error, exc)
            return 0, error or exc
        self.events_spilled += len(events)
        if first:
            self._next_replay = time.monotonic() + self._replay_wait
            logger.warning("fluvial store: the database does not take writes (%s); the run "
                           "record is kept in the journal %s until it does", error,
                           path.parent)
        return 0, None

    def replay_orphans(self) -> int:
        """Write the journals that writers now gone left for this database."""
        from fluvial.store.writer.journal import replay_orphans

        def commit_for(pid: int, hostname: str) -> Any:
            def commit(events: Sequence[tuple]) -> tuple[int, BaseException | None]:
                own = self.pid, self.hostname
                self.pid, self.hostname = pid, hostname  # the runs stay the dead driver's
                try:
                    return self.commit_once(events)
                finally:
                    self.pid, self.hostname = own
            return commit

        return replay_orphans(self.target.url, commit_for)

    def _reconnect(self) -> None:
        """A fresh connection, quietly, if one can be had (the old one may be dead)."""
        try:
            conn = connect(self.target)
        except Exception:  # still down: keep the old one, try again later
            return
        try:
            self.conn.close()
        except Exception:
            pass
        self.conn = conn

    def _usable(self) -> bool:
        """Whether the connection can take a retry, reconnecting if the server dropped it."""
        if not getattr(self.conn, "broken", False):
            return True
        try:
            conn = connect(self.target)
        except StoreError as exc:
            logger.warning("fluvial store: cannot reconnect: %s", exc)
            return False
        self.conn.close()
        self.conn = conn
        return True

    def close(self, drain_seconds: float = 5.0) -> None:
        """Try to write the journal (for up to ``drain_seconds``), then let go."""
        from fluvial.store.writer.journal import drain

        drain(self.journal, lambda: self._replay(force=True), drain_seconds)
        self.journal.close()
        self._checkpoint_again()
        self.conn.close()
