"""``/ui/stream``: server-sent events that keep an open page live, resumable by ``Last-Event-ID``.

The stream follows the record's own sequences — ``state_history.seq`` for state changes
and ``logs.seq`` for log lines — so an event id is just those positions
(``"<states seq>.<logs seq>"``): a browser that reconnects sends the last one it saw
(``Last-Event-ID``) and gets exactly what it missed. Without one, it starts at the
newest rows. Each event carries an HTML fragment rendered by the same macros as the
page (autoescaped): a runs list gets ``flow-run`` rows; a run's page
(``?run=<id>``) gets ``run-state`` (its header), ``task-run`` rows and ``log`` lines.

The stream polls the database every ``POLL_S`` while a page is open, with one indexed
range query per table; an idle server with no page open does no work at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from fluvial.server import queries
from fluvial.server.db import connection
from fluvial.server.ui.render import macro

router = APIRouter(include_in_schema=False)

POLL_S = 0.25
BATCH = 500


def _positions(last_event_id: str | None) -> tuple[int, int] | None:
    if not last_event_id:
        return None
    states, _, logs = last_event_id.partition(".")
    try:
        return int(states), int(logs)
    except ValueError:
        return None


def _latest() -> tuple[int, int]:
    with connection() as conn:
        states = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM state_history").fetchone()[0]
        logs = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM logs").fetchone()[0]
    return int(states), int(logs)


def _changes(position: tuple[int, int], run: str | None) -> tuple[list[dict[str, Any]],
                                                                   tuple[int, int]]:
    """The events for everything recorded after ``position``, and the new position."""
    states_seq, logs_seq = position
    out: list[dict[str, Any]] = []
    with connection() as conn:
        rows = conn.execute("SELECT seq, run_id FROM state_history WHERE seq > ? ORDER BY seq "
                            f"LIMIT {BATCH}", (states_seq,)).fetchall()
        if rows:
            states_seq = int(rows[-1][0])
        changed = list(dict.fromkeys(r[1] for r in rows))
        if run is None:
            for run_id in changed:
                item = queries.flow_run(conn, run_id)
                if item is not None:
                    out.append({"event": "flow-run", "data": macro("run_row", item)})
        else:
            for run_id in changed:
                if run_id == run:
                    item = queries.flow_run(conn, run_id)
                    if item is not None:
                        out.append({"event": "run-state", "data": macro("run_header", item)})
                    continue
                task = conn.execute(
                    f"SELECT {queries.TASK_RUN_COLUMNS} FROM task_runs WHERE id = ? AND "
                    "flow_run_id = ?", (run_id, run)).fetchone()
                if task is not None:
                    out.append({"event": "task-run",
                                "data": macro("task_row", queries._task_run(task))})
            # read up to a snapshot of the newest log, then stand there: other runs' lines
            # are not scanned again on the next poll
            newest = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM logs").fetchone()[0])
            lines = queries.logs(conn, run, after_seq=logs_seq, limit=BATCH, upto_seq=newest)
            logs_seq = lines[-1]["seq"] if len(lines) == BATCH else max(logs_seq, newest)
            out += [{"event": "log", "data": macro("log_line", line)} for line in lines]
    return out, (states_seq, logs_seq)


def stream_url(run: str | None = None) -> str:
    """The stream's URL for a page being rendered now: it starts where the page's data ends,
    so nothing recorded between the page's queries and the stream's connection is missed."""
    states, logs = _latest()
    return f"/ui/stream?after={states}.{logs}" + (f"&run={run}" if run else "")


@router.get("/ui/stream")
async def stream(request: Request, run: str | None = None,
                 after: str | None = None) -> EventSourceResponse:
    start = _positions(request.headers.get("last-event-id")) or _positions(after)

    async def events() -> AsyncIterator[dict[str, Any]]:
        position = start if start is not None else await asyncio.to_thread(_latest)
        while not await request.is_disconnected():
            batch, position = await asyncio.to_thread(_changes, position, run)
            ident = f"{position[0]}.{position[1]}"
            for item in batch:
                yield {**item, "id": ident}
            if len(batch) < BATCH:
                await asyncio.sleep(POLL_S)

    return EventSourceResponse(events(), ping=15)
