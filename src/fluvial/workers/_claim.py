"""Taking due runs off the record, atomically: one worker per run, deployment limits kept.

A run is *due* when it is ``SCHEDULED`` and its ``scheduled_start_time`` has
come. A worker of pool P takes due runs whose pool (the run's, else its
deployment's) is P; a ``serve()`` process takes due runs of its own
deployments. Claiming sets the run ``PENDING`` with the worker's id:

* SQLite: one ``UPDATE … WHERE id = (SELECT … due …) AND state_type = 'SCHEDULED'
  … RETURNING id`` in a write transaction, so two workers cannot take one run;
* PostgreSQL: ``SELECT … FOR UPDATE OF r SKIP LOCKED`` picks a due run no other
  claimer holds, then the same guarded ``UPDATE``; for a deployment with a
  concurrency limit the deployment's row is locked (``FOR UPDATE``) while its
  active runs are counted, so two claimers cannot both take its last slot.

A due run of a deployment at its ``concurrency_limit`` waits (``ENQUEUE``) or
is cancelled (``CANCEL_NEW``). Active runs — ``PENDING``, ``RUNNING``,
``CANCELLING``, ``PAUSED`` — hold a slot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from fluvial.store.dialects import POSTGRESQL, dialect_of, id_table

__all__ = ["ACTIVE", "cancel_collisions", "claim_next"]

ACTIVE = "('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')"

_DUE = """r.state_type = 'SCHEDULED' AND r.scheduled_start_time <= ?2 AND {scope}"""
_FULL = f"""(SELECT count(*) FROM flow_runs o WHERE o.deployment_id = r.deployment_id
              AND o.state_type IN {ACTIVE}) >= d.concurrency_limit"""


def _scope(dialect: str, deployment_ids: Sequence[str] | None) -> str:
    if deployment_ids is not None:
        return f"r.deployment_id IN (SELECT j.value FROM {id_table(dialect)})"
    return "coalesce(r.work_pool, d.work_pool) = ?1"


def _scope_param(pool: str | None, deployment_ids: Sequence[str] | None) -> str:
    return json.dumps(list(deployment_ids)) if deployment_ids is not None else str(pool)


_CLAIM = """UPDATE flow_runs SET state_type = 'PENDING', state_name = 'Pending',
       state_message = ?4, state_ts = ?5, worker_id = ?3, claimed_at = ?2,
       attempt = coalesce(attempt, 0) + 1
   WHERE id = ?6 AND state_type = 'SCHEDULED'
   RETURNING id"""
_CLAIM_ONE = """UPDATE flow_runs SET state_type = 'PENDING', state_name = 'Pending',
       state_message = ?3, state_ts = ?4, worker_id = ?2, claimed_at = ?5,
       attempt = coalesce(attempt, 0) + 1
   WHERE id = ?1 AND state_type = 'SCHEDULED'
   RETURNING id"""


def _history(conn: Any, run_id: str, type_: str, name: str, message: str, ts: float) -> None:
    conn.execute(
        "INSERT INTO state_history (run_id, type, name, message, ts) VALUES (?, ?, ?, ?, ?)",
        (run_id, type_, name, message, ts),
    )


def claim_next(conn: Any, worker_id: str, now: float, pool: str | None = "default",
               deployment_ids: Sequence[str] | None = None) -> str | None:
    """Claim the earliest due run this worker may take; its id, or None."""
    dialect = dialect_of(conn)
    scope = _scope(dialect, deployment_ids)
    param = _scope_param(pool, deployment_ids)
    message = f"claimed by worker {worker_id}"
    ts = time.time()
    # a plain read first: an idle poll takes no write lock
    if conn.execute(
        f"""SELECT 1 FROM flow_runs r LEFT JOIN deployments d ON d.id = r.deployment_id
            WHERE {_DUE.format(scope=scope)} LIMIT 1""", (param, now)).fetchone() is None:
        return None
    if dialect == POSTGRESQL:
        return _claim_postgres(conn, scope, param, worker_id, now, message, ts)
    from fluvial.store.connection import transaction

    pick = f"""(SELECT r.id FROM flow_runs r LEFT JOIN deployments d ON d.id = r.deployment_id
                WHERE {_DUE.format(scope=scope)}
                  AND (d.concurrency_limit IS NULL OR NOT {_FULL})
                ORDER BY r.scheduled_start_time, r.created LIMIT 1)"""
    with transaction(conn):
        row = conn.execute(_CLAIM.replace("?6", pick), (param, now, worker_id, message, ts)
                           ).fetchone()
        if row is None:
            return None
        _history(conn, row[0], "PENDING", "Pending", message, ts)
        return str(row[0])


def _claim_postgres(conn: Any, scope: str, param: str, worker_id: str, now: float,
                    message: str, ts: float) -> str | None:
    from fluvial.store.connection import rollback

    skipped: list[str] = []
    conn.execute("BEGIN")
    try:
        while True:
            # full deployments are left out by the count; the recount below is the guarantee
            candidate = conn.execute(
                f"""SELECT r.id, r.deployment_id FROM flow_runs r
                    LEFT JOIN deployments d ON d.id = r.deployment_id
                    WHERE {_DUE.format(scope=scope)}
                      AND (d.concurrency_limit IS NULL OR NOT {_FULL})
                      AND NOT (r.id = ANY(CAST(?3 AS text[])))
                    ORDER BY r.scheduled_start_time, r.created LIMIT 1
                    FOR UPDATE OF r SKIP LOCKED""",
                (param, now, skipped),
            ).fetchone()
            if candidate is None:
                conn.execute("COMMIT")
                return None
            run_id, deployment_id = candidate
            if deployment_id is not None:
                limit = conn.execute(
                    "SELECT concurrency_limit FROM deployments WHERE id = ? FOR UPDATE",
                    (deployment_id,),
                ).fetchone()
                if limit is not None and limit[0] is not None:
                    active = conn.execute(
                        f"SELECT count(*) FROM flow_runs WHERE deployment_id = ? "
                        f"AND state_type IN {ACTIVE}", (deployment_id,)
                    ).fetchone()[0]
                    if active >= limit[0]:
                        skipped.append(run_id)
                        continue
            row = conn.execute(_CLAIM_ONE, (run_id, worker_id, message, ts, now)).fetchone()
            if row is None:  # cannot happen under the row lock; be safe
                skipped.append(run_id)
                continue
            _history(conn, run_id, "PENDING", "Pending", message, ts)
            conn.execute("COMMIT")
            return str(run_id)
    except BaseException:
        rollback(conn)
        raise


def cancel_collisions(conn: Any, now: float, pool: str | None = "default",
                      deployment_ids: Sequence[str] | None = None) -> list[str]:
    """Cancel due runs of ``CANCEL_NEW`` deployments that are at their limit; their ids."""
    from fluvial.deployments._records import set_state
    from fluvial.store.connection import transaction

    dialect = dialect_of(conn)
    scope = _scope(dialect, deployment_ids)
    param = _scope_param(pool, deployment_ids)
    sql = f"""SELECT r.id FROM flow_runs r JOIN deployments d ON d.id = r.deployment_id
              WHERE {_DUE.format(scope=scope)} AND d.collision_strategy = 'CANCEL_NEW'
                AND d.concurrency_limit IS NOT NULL AND {_FULL}"""
    if not conn.execute(sql, (param, now)).fetchone():
        return []
    cancelled = []
    with transaction(conn):
        for (run_id,) in conn.execute(sql, (param, now)).fetchall():
            set_state(conn, run_id, "CANCELLED", "Cancelled",
                      "its deployment was at its concurrency limit (collision strategy CANCEL_NEW)")
            cancelled.append(str(run_id))
    return cancelled
