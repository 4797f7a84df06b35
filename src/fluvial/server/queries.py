"""What the API and the pages read, with keyset pagination and no ``COUNT(*)`` over big tables.

A page of a list is ordered by a unique key (``created, id`` for runs); its cursor is
the last row's key, opaque to clients (base64 of JSON). A filter narrows the index
range the list walks (``flow_name``, ``state_type``, ``deployment_id``, time).
Counts shown on a run's page are per task and state of that one run (one indexed
aggregate), never over a whole table.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Page",
    "decode_cursor",
    "deployments",
    "encode_cursor",
    "flow_run",
    "flow_runs",
    "limits",
    "logs",
    "run_states",
    "task_run_summary",
    "task_runs",
    "workers",
]

MAX_PAGE = 500

FLOW_RUN_COLUMNS = (
    "id, name, flow_name, parameters, tags, parent_task_run_id, created, state_type, "
    "state_name, state_message, start_time, end_time, deployment_id, scheduled_start_time, "
    "work_pool, worker_id, hostname, pid"
)
TASK_RUN_COLUMNS = ("id, flow_run_id, name, task_key, tags, created, state_type, state_name, "
                    "state_message, start_time, end_time")


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """The key in ``cursor``; ``ValueError`` when it is not one of ours."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor is not valid") from exc
    if not isinstance(key, list) or len(key) != size:
        raise ValueError("cursor is not valid")
    return key


def _tags(value: str | None) -> list[str]:
    return json.loads(value) if value else []


def _flow_run(row: Sequence[Any]) -> dict[str, Any]:
    keys = [c.strip() for c in FLOW_RUN_COLUMNS.split(",")]
    item = dict(zip(keys, row, strict=True))
    item["parameters"] = json.loads(item["parameters"]) if item["parameters"] else {}
    item["tags"] = _tags(item["tags"])
    start, end = item["start_time"], item["end_time"]
    item["duration"] = end - start if start is not None and end is not None else None
    return item


def _task_run(row: Sequence[Any]) -> dict[str, Any]:
    keys = [c.strip() for c in TASK_RUN_COLUMNS.split(",")]
    item = dict(zip(keys, row, strict=True))
    item["tags"] = _tags(item["tags"])
    start, end = item["start_time"], item["end_time"]
    item["duration"] = end - start if start is not None and end is not None else None
    return item


def flow_runs(conn: Any, *, limit: int = 50, cursor: str | None = None,
              state: str | None = None, flow_name: str | None = None,
              deployment_id: str | None = None, tag: str | None = None,
              since: float | None = None, until: float | None = None) -> Page:
    """Flow runs, newest first."""
    where: list[str] = []
    args: list[Any] = []
    if state:
        where.append("state_type = ?")
        args.append(state.upper())
    if flow_name:
        where.append("flow_name = ?")
        args.append(flow_name)
    if deployment_id:
        where.append("deployment_id = ?")
        args.append(deployment_id)
    if tag:
        where.append("tags LIKE ?")
        args.append("%" + json.dumps(tag)[1:-1].replace("%", "\\%") + "%")
    if since is not None:
        where.append("created >= ?")
        args.append(since)
    if until is not None:
        where.append("created < ?")
        args.append(until)
    key = decode_cursor(cursor, 2)
    if key is not None:
        where.append("(created < ? OR (created = ? AND id < ?))")
        args += [key[0], key[0], key[1]]
    sql = f"SELECT {FLOW_RUN_COLUMNS} FROM flow_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    size = max(1, min(limit, MAX_PAGE))
    rows = conn.execute(sql + f" ORDER BY created DESC, id DESC LIMIT {size + 1}", args).fetchall()
    items = [_flow_run(r) for r in rows[:size]]
    more = len(rows) > size
    return Page(items, encode_cursor([items[-1]["created"], items[-1]["id"]]) if more else None)


def flow_run(conn: Any, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE id = ?",
                       (run_id,)).fetchone()
    return _flow_run(row) if row else None


def task_runs(conn: Any, flow_run_id: str, *, limit: int = 200, cursor: str | None = None,
              state: str | None = None) -> Page:
    """A flow run's task runs in creation order."""
    where, args = ["flow_run_id = ?"], [flow_run_id]
    if state:
        where.append("state_type = ?")
        args.append(state.upper())
    key = decode_cursor(cursor, 2)
    if key is not None:
        where.append("(created > ? OR (created = ? AND id > ?))")
        args += [key[0], key[0], key[1]]
    size = max(1, min(limit, MAX_PAGE))
    rows = conn.execute(
        f"SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE {' AND '.join(where)} "
        f"ORDER BY created, id LIMIT {size + 1}", args).fetchall()
    items = [_task_run(r) for r in rows[:size]]
    more = len(rows) > size
    return Page(items, encode_cursor([items[-1]["created"], items[-1]["id"]]) if more else None)


def task_run_summary(conn: Any, flow_run_id: str) -> list[dict[str, Any]]:
    """Per task: how many runs in each state, and when the first started and the last ended."""
    rows = conn.execute(
        "SELECT task_key, state_type, COUNT(*), MIN(start_time), MAX(end_time), MIN(created) "
        "FROM task_runs WHERE flow_run_id = ? GROUP BY task_key, state_type",
        (flow_run_id,)).fetchall()
    tasks: dict[str, dict[str, Any]] = {}
    for task_key, state_type, count, first, last, created in rows:
        entry = tasks.setdefault(task_key or "?", {
            "task_key": task_key, "name": (task_key or "?").rsplit(".", 1)[-1], "total": 0,
            "states": {}, "first_start": None, "last_end": None, "first_created": created})
        entry["total"] += count
        entry["states"][state_type or "PENDING"] = count
        if first is not None and (entry["first_start"] is None or first < entry["first_start"]):
            entry["first_start"] = first
        if last is not None and (entry["last_end"] is None or last > entry["last_end"]):
            entry["last_end"] = last
        if created is not None and created < entry["first_created"]:
            entry["first_created"] = created
    return sorted(tasks.values(), key=lambda t: (t["first_start"] or t["first_created"] or 0))


def task_edges(conn: Any, flow_run_id: str) -> list[dict[str, Any]]:
    """The edges between a flow run's task runs, summarised per task: how many runs of
    ``upstream`` fed runs of ``downstream`` (a map of thousands is one edge with a count)."""
    rows = conn.execute(
        "SELECT u.task_key, d.task_key, COUNT(*) FROM task_run_edges e "
        "JOIN task_runs u ON u.id = e.upstream_id JOIN task_runs d ON d.id = e.downstream_id "
        "WHERE e.flow_run_id = ? GROUP BY u.task_key, d.task_key ORDER BY 3 DESC",
        (flow_run_id,)).fetchall()
    return [{"upstream": up, "downstream": down, "count": count} for up, down, count in rows]


def run_states(conn: Any, run_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT seq, type, name, message, ts FROM state_history WHERE run_id = ? "
                        "ORDER BY ts, seq", (run_id,)).fetchall()
    return [{"seq": r[0], "type": r[1], "name": r[2], "message": r[3], "ts": r[4]} for r in rows]


def logs(conn: Any, flow_run_id: str, *, after_seq: int = 0, limit: int = 500,
         upto_seq: int | None = None) -> list[dict[str, Any]]:
    """A flow run's log lines and its task runs', oldest first, in (``after_seq``, ``upto_seq``]."""
    size = max(1, min(limit, 5 * MAX_PAGE))
    upto = 2**62 if upto_seq is None else upto_seq
    # by run id through ix_logs_run (the flow run's, then each of its task runs'): the cost
    # follows this run's size, not the size of the whole log
    rows = conn.execute(
        "SELECT seq, run_id, level, message, ts FROM logs WHERE run_id = ?1 AND seq > ?2 "
        "AND seq <= ?3 UNION ALL SELECT l.seq, l.run_id, l.level, l.message, l.ts FROM "
        "task_runs t JOIN logs l ON l.run_id = t.id WHERE t.flow_run_id = ?1 AND l.seq > ?2 "
        f"AND l.seq <= ?3 ORDER BY 1 LIMIT {size}", (flow_run_id, after_seq, upto)).fetchall()
    return [{"seq": r[0], "run_id": r[1], "level": r[2], "message": r[3], "ts": r[4]}
            for r in rows]


def deployments(conn: Any) -> list[dict[str, Any]]:
    """Deployments with their schedules and last few runs' states (one query each, bounded)."""
    deps = conn.execute(
        "SELECT id, flow_name, name, entrypoint, parameters, parameter_schema, tags, description, "
        "version, work_pool, concurrency_limit, collision_strategy, paused, created, updated "
        "FROM deployments ORDER BY flow_name, name LIMIT 1000").fetchall()
    out = []
    for row in deps:
        keys = ["id", "flow_name", "name", "entrypoint", "parameters", "parameter_schema", "tags",
                "description", "version", "work_pool", "concurrency_limit",
                "collision_strategy", "paused", "created", "updated"]
        item = dict(zip(keys, row, strict=True))
        item["parameters"] = json.loads(item["parameters"] or "{}")
        item["parameter_schema"] = json.loads(item["parameter_schema"] or "{}")
        item["tags"] = _tags(item["tags"])
        item["paused"] = bool(item["paused"])
        item["full_name"] = f"{item['flow_name']}/{item['name']}"
        item["schedules"] = [
            {"slug": s[0], "schedule": json.loads(s[1]), "active": bool(s[2]),
             "next_fire_time": s[3]}
            for s in conn.execute("SELECT slug, schedule, active, next_fire_time FROM "
                                  "deployment_schedules WHERE deployment_id = ? ORDER BY slug",
                                  (item["id"],)).fetchall()]
        item["recent"] = [
            {"id": r[0], "state_type": r[1], "created": r[2]}
            for r in conn.execute("SELECT id, state_type, created FROM flow_runs WHERE "
                                  "deployment_id = ? ORDER BY created DESC LIMIT 10",
                                  (item["id"],)).fetchall()]
        out.append(item)
    return out


def workers(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, name, work_pool, hostname, pid, heartbeat, started FROM workers "
                        "ORDER BY heartbeat DESC LIMIT 500").fetchall()
    keys = ["id", "name", "work_pool", "hostname", "pid", "heartbeat", "started"]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def limits(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute('SELECT tag, "limit", slot_decay_per_second, updated FROM '
                        "concurrency_limits ORDER BY tag").fetchall()
    return [{"tag": r[0], "limit": r[1], "slot_decay_per_second": r[2], "updated": r[3]}
            for r in rows]
