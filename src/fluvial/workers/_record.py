"""What a worker reads and writes in the run record: directly, or through a fluvial server.

:class:`DbRecord` does it on a database connection (a worker on the record, and the
server's ``/api/workers/...`` endpoints on the worker's behalf); :class:`ApiRecord` asks
the server at ``FLUVIAL_API_URL`` to (``fluvial worker start`` with it set). Both have
the same methods, so :class:`fluvial.workers.Worker` does not care which it has.
Claims stay atomic either way: the server runs the same claim on its database.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fluvial.workers import _claim, _reaper

__all__ = ["ApiRecord", "DbRecord", "WorkerIdentity"]


@dataclass(frozen=True)
class WorkerIdentity:
    """Who a worker is, as the ``workers`` table holds it."""

    id: str
    name: str
    pool: str | None
    hostname: str
    pid: int

    @classmethod
    def here(cls, id: str, name: str, pool: str | None) -> WorkerIdentity:
        return cls(id, name, pool, socket.gethostname(), os.getpid())


class DbRecord:
    """The worker's reads and writes, on ``conn``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def register(self, me: WorkerIdentity, now: float) -> None:
        from fluvial.store.connection import transaction

        with transaction(self.conn):
            self._insert(me, now)

    def _insert(self, me: WorkerIdentity, now: float) -> None:
        self.conn.execute(
            "INSERT INTO workers (id, name, work_pool, hostname, pid, heartbeat, started) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (me.id, me.name, me.pool, me.hostname, me.pid, now, now))

    def unregister(self, worker_id: str) -> None:
        from fluvial.store.connection import transaction

        with transaction(self.conn):
            self.conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def heartbeat(self, me: WorkerIdentity, now: float) -> None:
        from fluvial.store.connection import transaction

        with transaction(self.conn):
            updated = self.conn.execute("UPDATE workers SET heartbeat = ? WHERE id = ?",
                                        (now, me.id)).rowcount
            if not updated:  # reaped while stalled: come back
                self._insert(me, now)

    def cancel_collisions(self, now: float, pool: str | None,
                          deployment_ids: Sequence[str] | None) -> list[str]:
        return _claim.cancel_collisions(self.conn, now, pool, deployment_ids)

    def claim(self, worker_id: str, now: float, pool: str | None,
              deployment_ids: Sequence[str] | None) -> str | None:
        return _claim.claim_next(self.conn, worker_id, now, pool, deployment_ids)

    def cancelling(self, worker_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT id FROM flow_runs WHERE worker_id = ? AND state_type = 'CANCELLING'",
            (worker_id,)).fetchall()
        return [str(run_id) for (run_id,) in rows]

    def crash(self, run_id: str, message: str) -> None:
        from fluvial.deployments._records import set_state
        from fluvial.store.connection import transaction

        with transaction(self.conn):
            set_state(self.conn, run_id, "CRASHED", "Crashed", message)

    def settle(self, run_id: str, code: int, cancelling: bool, handing_back: bool,
               worker_name: str, now: float) -> None:
        """Record what a flow process that exited with ``code`` left unsaid."""
        from fluvial.deployments._records import set_state
        from fluvial.store.connection import transaction

        conn = self.conn
        row = conn.execute("SELECT state_type FROM flow_runs WHERE id = ?",
                           (run_id,)).fetchone()
        state = row[0] if row else None
        with transaction(conn):
            if cancelling or state == "CANCELLING":
                set_state(conn, run_id, "CANCELLED", "Cancelled",
                          f"cancelled; its process exited with status {code}")
            elif handing_back:
                conn.execute(
                    "UPDATE flow_runs SET worker_id = NULL, claimed_at = NULL, infrastructure_pid"
                    " = NULL, pid = NULL, hostname = NULL, scheduled_start_time = ? WHERE id = ?",
                    (now, run_id))
                set_state(conn, run_id, "SCHEDULED", "Scheduled",
                          f"handed back by worker {worker_name} as it stopped")
            elif state not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                set_state(conn, run_id, "CRASHED", "Crashed",
                          f"its process exited with status {code} before the run ended")
                _reaper.reschedule_if_retries_left(conn, run_id, now)
            elif state == "CRASHED":
                _reaper.reschedule_if_retries_left(conn, run_id, now)


class ApiRecord:
    """The same reads and writes through the server's ``/api/workers/...`` endpoints."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def register(self, me: WorkerIdentity, now: float) -> None:
        self.api.request("POST", f"/api/workers/{me.id}/register", json=_identity(me, now))

    def unregister(self, worker_id: str) -> None:
        self.api.request("DELETE", f"/api/workers/{worker_id}")

    def heartbeat(self, me: WorkerIdentity, now: float) -> None:
        self.api.request("POST", f"/api/workers/{me.id}/heartbeat", json=_identity(me, now))

    def cancel_collisions(self, now: float, pool: str | None,
                          deployment_ids: Sequence[str] | None) -> list[str]:
        return []  # the server's claim does it, right before it claims

    def claim(self, worker_id: str, now: float, pool: str | None,
              deployment_ids: Sequence[str] | None) -> str | None:
        reply = self.api.request("POST", f"/api/workers/{worker_id}/claim", json={
            "now": now, "pool": pool,
            "deployment_ids": None if deployment_ids is None else list(deployment_ids)})
        return reply.get("run_id")

    def cancelling(self, worker_id: str) -> list[str]:
        return list(self.api.request("GET", f"/api/workers/{worker_id}/cancelling"))

    def crash(self, run_id: str, message: str) -> None:
        self.api.request("POST", f"/api/flow_runs/{run_id}/crash", json={"message": message})

    def settle(self, run_id: str, code: int, cancelling: bool, handing_back: bool,
               worker_name: str, now: float) -> None:
        self.api.request("POST", f"/api/flow_runs/{run_id}/settle", json={
            "code": code, "cancelling": cancelling, "handing_back": handing_back,
            "worker_name": worker_name, "now": now})


def _identity(me: WorkerIdentity, now: float) -> dict[str, Any]:
    return {"name": me.name, "pool": me.pool, "hostname": me.hostname, "pid": me.pid,
            "now": now}
