"""Deployments, their schedules and their runs in the run record (SQLite or PostgreSQL).

Every function opens its own short connection unless given one. Writes run in
the store's write transaction. A deployment's run is created as a row in
``flow_runs`` in state ``SCHEDULED`` (with the state in ``state_history``, so
the engine's later states fold onto it); with an ``idempotency_key`` a second
creation for the same key returns the first run instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fluvial.deployments._model import ConcurrencyLimitStrategy, Deployment, DeploymentNotFound

__all__ = [
    "ScheduleRecord",
    "add_schedules",
    "apply_deployment",
    "connection",
    "create_flow_run",
    "delete_deployment",
    "delete_schedule",
    "get_deployment",
    "list_deployments",
    "list_schedules",
    "set_paused",
    "set_schedule_active",
    "set_state",
]

_COLUMNS = (
    "id, flow_name, name, entrypoint, source, parameters, parameter_schema, tags, description, "
    "version, work_pool, concurrency_limit, collision_strategy, paused, retries, created, updated"
)


@contextmanager
def connection(conn: Any = None) -> Iterator[Any]:
    """``conn``, or a new opened store connection closed on exit."""
    if conn is not None:
        yield conn
        return
    from fluvial.store.connection import open_database

    new = open_database()
    try:
        yield new
    finally:
        new.close()


def _transaction(conn: Any) -> Any:
    from fluvial.store.connection import transaction

    return transaction(conn)


def _from_row(row: Sequence[Any]) -> Deployment:
    (id_, flow_name, name, entrypoint, source, parameters, schema, tags, description, version,
     pool, limit, strategy, paused, retries, created, updated) = row
    return Deployment(
        id=id_, flow_name=flow_name, name=name, entrypoint=entrypoint, source=source,
        parameters=json.loads(parameters or "{}"), parameter_schema=json.loads(schema or "{}"),
        tags=json.loads(tags or "[]"), description=description, version=version, work_pool=pool,
        concurrency_limit=limit,
        collision_strategy=ConcurrencyLimitStrategy.parse(strategy or "ENQUEUE"),
        paused=bool(paused), retries=retries or 0, created=created, updated=updated,
    )


def apply_deployment(dep: Deployment, conn: Any = None) -> str:
    """Create or update ``dep`` (unique on flow name and name) and sync its schedules."""
    now = time.time()
    values = (
        str(uuid.uuid4()), dep.flow_name, dep.name, dep.entrypoint, dep.source,
        json.dumps(dep.parameters), json.dumps(dep.parameter_schema),
        json.dumps(sorted(set(dep.tags))), dep.description, dep.version, dep.work_pool,
        dep.concurrency_limit, dep.collision_strategy.value, int(dep.paused), dep.retries,
        now, now,
    )
    with connection(conn) as c, _transaction(c):
        row = c.execute(
            f"""INSERT INTO deployments ({_COLUMNS}) VALUES
                (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (flow_name, name) DO UPDATE SET
                  entrypoint = excluded.entrypoint, source = excluded.source,
                  parameters = excluded.parameters, parameter_schema = excluded.parameter_schema,
                  tags = excluded.tags, description = excluded.description,
                  version = excluded.version, work_pool = excluded.work_pool,
                  concurrency_limit = excluded.concurrency_limit,
                  collision_strategy = excluded.collision_strategy, paused = excluded.paused,
                  retries = excluded.retries, updated = excluded.updated
                RETURNING id, created""",
            values,
        ).fetchone()
        dep_id: str = row[0]
        dep.id, dep.created, dep.updated = dep_id, row[1], now
        _sync_schedules(c, dep_id, dep.schedules)
    if dep.triggers is not None:
        from fluvial.automations import sync_deployment_triggers

        with connection(conn) as c:
            sync_deployment_triggers(dep_id, dep.full_name, dep.triggers, c)
    return dep_id


def _schedule_values(schedule: Any) -> tuple[str, str, int]:
    slug = schedule.derived_slug
    return slug, json.dumps(schedule.to_dict()), int(bool(getattr(schedule, "active", True)))


def _sync_schedules(conn: Any, deployment_id: str, schedules: Sequence[Any]) -> None:
    """The deployment's schedules become ``schedules``: an unchanged one (same slug) keeps
    its row and next fire time, so redeploying cannot fire a time twice."""
    wanted = {}
    for schedule in schedules:
        slug, body, active = _schedule_values(schedule)
        wanted[slug] = (body, active)
    existing = {r[0] for r in conn.execute(
        "SELECT slug FROM deployment_schedules WHERE deployment_id = ?", (deployment_id,))}
    for slug in existing - set(wanted):
        conn.execute("DELETE FROM deployment_schedules WHERE deployment_id = ? AND slug = ?",
                     (deployment_id, slug))
    for slug, (body, active) in wanted.items():
        if slug in existing:
            conn.execute(
                "UPDATE deployment_schedules SET schedule = ?, active = ? "
                "WHERE deployment_id = ? AND slug = ?", (body, active, deployment_id, slug))
        else:
            conn.execute(
                "INSERT INTO deployment_schedules (id, deployment_id, slug, schedule, active) "
                "VALUES (?, ?, ?, ?, ?)", (str(uuid.uuid4()), deployment_id, slug, body, active))


def split_name(full_name: str) -> tuple[str, str]:
    """``("flow", "deployment")`` from ``flow/deployment``."""
    flow_name, sep, name = full_name.partition("/")
    if not sep or not flow_name or not name:
        raise ValueError(f"a deployment is named FLOW_NAME/DEPLOYMENT_NAME, got {full_name!r}")
    return flow_name, name


def get_deployment(name_or_id: str, conn: Any = None) -> Deployment:
    """The deployment ``flow/name`` (or with that id); ``DeploymentNotFound`` otherwise."""
    with connection(conn) as c:
        if "/" in name_or_id:
            flow_name, name = split_name(name_or_id)
            row = c.execute(f"SELECT {_COLUMNS} FROM deployments WHERE flow_name = ? AND name = ?",
                            (flow_name, name)).fetchone()
        else:
            row = c.execute(f"SELECT {_COLUMNS} FROM deployments WHERE id = ?",
                            (name_or_id,)).fetchone()
        if row is None:
            hint = "" if "/" in name_or_id else " (name one as FLOW_NAME/DEPLOYMENT_NAME or by id)"
            raise DeploymentNotFound(f"no deployment named {name_or_id!r}{hint}")
        dep = _from_row(row)
        dep.schedules = [s.schedule for s in list_schedules(row[0], c) if s.schedule is not None]
        return dep


def list_deployments(flow_name: str | None = None, conn: Any = None) -> list[Deployment]:
    with connection(conn) as c:
        sql = f"SELECT {_COLUMNS} FROM deployments"
        params: tuple = ()
        if flow_name:
            sql += " WHERE flow_name = ?"
            params = (flow_name,)
        return [_from_row(r) for r in c.execute(sql + " ORDER BY flow_name, name", params)]


def delete_deployment(name_or_id: str, conn: Any = None) -> Deployment:
    """Delete the deployment and its schedules; its runs stay in the record."""
    with connection(conn) as c:
        dep = get_deployment(name_or_id, c)
        with _transaction(c):
            c.execute("DELETE FROM deployment_schedules WHERE deployment_id = ?", (dep.id,))
            c.execute("DELETE FROM deployments WHERE id = ?", (dep.id,))
            # its runs still waiting will never be claimed: cancel them
            for (run_id,) in c.execute(
                "SELECT id FROM flow_runs WHERE deployment_id = ? AND state_type = 'SCHEDULED'",
                (dep.id,),
            ).fetchall():
                set_state(c, run_id, "CANCELLED", "Cancelled", "its deployment was deleted")
        return dep


def set_paused(name_or_id: str, paused: bool, conn: Any = None) -> Deployment:
    with connection(conn) as c:
        dep = get_deployment(name_or_id, c)
        with _transaction(c):
            c.execute("UPDATE deployments SET paused = ?, updated = ? WHERE id = ?",
                      (int(paused), time.time(), dep.id))
            if dep.paused and not paused:
                # resumed: its schedules start again from now, the paused times are not
                # caught up (the scheduler sets each to its first fire time after now)
                c.execute("UPDATE deployment_schedules SET next_fire_time = NULL "
                          "WHERE deployment_id = ?", (dep.id,))
        dep.paused = paused
        return dep


@dataclass(frozen=True)
class ScheduleRecord:
    """One row of ``deployment_schedules``; ``schedule`` is the object when it can be read."""

    id: str
    deployment_id: str
    slug: str
    body: dict[str, Any]
    active: bool
    next_fire_time: float | None
    last_fired_time: float | None
    schedule: Any

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "deployment_id": self.deployment_id, "slug": self.slug,
                "schedule": self.body, "active": self.active,
                "next_fire_time": self.next_fire_time, "last_fired_time": self.last_fired_time}


def _schedule_from(body: dict[str, Any]) -> Any:
    try:
        from fluvial.schedules import schedule_from_dict
    except ImportError:
        return None
    try:
        return schedule_from_dict(body)
    except Exception:
        return None


def list_schedules(deployment_id: str, conn: Any = None) -> list[ScheduleRecord]:
    with connection(conn) as c:
        rows = c.execute(
            "SELECT id, deployment_id, slug, schedule, active, next_fire_time, last_fired_time "
            "FROM deployment_schedules WHERE deployment_id = ? ORDER BY slug", (deployment_id,)
        ).fetchall()
    out = []
    for id_, dep_id, slug, body, active, next_fire, last_fired in rows:
        data = json.loads(body)
        out.append(ScheduleRecord(id_, dep_id, slug, data, bool(active), next_fire, last_fired,
                                  _schedule_from(data)))
    return out


def add_schedules(name_or_id: str, schedules: Sequence[Any], conn: Any = None) -> list[str]:
    """Add schedules to a deployment (an identical one already there is kept); their slugs."""
    with connection(conn) as c:
        dep = get_deployment(name_or_id, c)
        current = {s.derived_slug: s for s in dep.schedules}
        for schedule in schedules:
            current.setdefault(schedule.derived_slug, schedule)
        with _transaction(c):
            _sync_schedules(c, str(dep.id), list(current.values()))
        return [s.derived_slug for s in schedules]


def _find_schedule(conn: Any, dep: Deployment, slug: str) -> ScheduleRecord:
    records = list_schedules(str(dep.id), conn)
    matches = [r for r in records if r.slug == slug] or [
        r for r in records if r.slug.startswith(slug)]
    if len(matches) != 1:
        known = [r.slug for r in records]
        raise LookupError(f"deployment {dep.full_name!r} has no schedule {slug!r}; "
                          f"its schedules: {known}")
    return matches[0]


def set_schedule_active(name_or_id: str, slug: str, active: bool, conn: Any = None) -> str:
    with connection(conn) as c:
        dep = get_deployment(name_or_id, c)
        record = _find_schedule(c, dep, slug)
        with _transaction(c):
            c.execute("UPDATE deployment_schedules SET active = ? WHERE id = ?",
                      (int(active), record.id))
            if active and not record.active:  # resumed: start again from now, no catch-up
                c.execute("UPDATE deployment_schedules SET next_fire_time = NULL WHERE id = ?",
                          (record.id,))
        return record.slug


def delete_schedule(name_or_id: str, slug: str, conn: Any = None) -> str:
    with connection(conn) as c:
        dep = get_deployment(name_or_id, c)
        record = _find_schedule(c, dep, slug)
        with _transaction(c):
            c.execute("DELETE FROM deployment_schedules WHERE id = ?", (record.id,))
        return record.slug


def set_state(conn: Any, run_id: str, type_: str, name: str, message: str | None = None,
              ts: float | None = None) -> None:
    """Record a state of flow run ``run_id`` (inside the caller's transaction)."""
    from fluvial.store import rows as _writes

    _writes.insert_states(conn, [(run_id, type_, name, message, ts or time.time(), None)])
    _writes.refresh_flow_runs(conn, [run_id])


def create_flow_run(
    dep: Deployment,
    parameters: dict[str, Any],
    *,
    scheduled_time: float | None = None,
    idempotency_key: str | None = None,
    name: str | None = None,
    tags: Sequence[str] = (),
    parent_task_run_id: str | None = None,
    conn: Any = None,
) -> tuple[str, bool]:
    """A ``SCHEDULED`` run of ``dep``; ``(run id, created)`` (False: the key's existing run)."""
    from fluvial.orchestration.flow_engine import generate_run_name

    now = time.time()
    run_id = str(uuid.uuid4())
    run_tags = sorted(set(dep.tags) | set(tags))
    due = scheduled_time if scheduled_time is not None else now
    with connection(conn) as c, _transaction(c):
        inserted = c.execute(
            """INSERT INTO flow_runs (id, name, flow_name, parameters, tags, parent_task_run_id,
                   created, state_type, state_name, state_ts, deployment_id, idempotency_key,
                   scheduled_start_time, work_pool, job_parameters, attempt)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'SCHEDULED', 'Scheduled', ?, ?, ?, ?, ?, ?, 0)
               ON CONFLICT DO NOTHING""",
            (run_id, name or generate_run_name(), dep.flow_name, json.dumps(parameters, default=repr),
             json.dumps(run_tags), parent_task_run_id, now, now, dep.id, idempotency_key, due,
             dep.work_pool, json.dumps(parameters)),
        ).rowcount
        if not inserted:
            row = c.execute("SELECT id FROM flow_runs WHERE idempotency_key = ?",
                            (idempotency_key,)).fetchone()
            return row[0], False
        from fluvial.store import rows as _writes

        _writes.insert_states(c, [(run_id, "SCHEDULED", "Scheduled", None, now, None)])
    return run_id, True
