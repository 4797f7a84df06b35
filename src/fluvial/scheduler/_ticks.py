"""Reading the scheduler's record: a deployment's ticks, newest first ("why didn't it run?")."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Tick", "find_deployment", "list_ticks"]

_TICKS = """
SELECT seq, deployment_id, schedule_slug, fire_time, decided_at, outcome, reason, flow_run_id
FROM schedule_ticks WHERE deployment_id = ?
"""


@dataclass(frozen=True)
class Tick:
    """One scheduler decision: a fire time created, skipped (why), cancelled late or duplicate."""

    seq: int
    deployment_id: str
    schedule_slug: str | None
    fire_time: float | None
    decided_at: float
    outcome: str
    reason: str | None
    flow_run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_deployment(conn: Any, name: str) -> tuple[str, str, bool] | None:
    """``(id, "flow/name", paused)`` of the deployment called ``flow/name`` (or with that id)."""
    row = conn.execute(
        "SELECT id, flow_name, name, paused FROM deployments "
        "WHERE id = ? OR flow_name || '/' || name = ? ORDER BY id LIMIT 1", (name, name),
    ).fetchone()
    if row is None:
        return None
    return row[0], f"{row[1]}/{row[2]}", bool(row[3])


def list_ticks(conn: Any, deployment_id: str, *, slug: str | None = None,
               outcome: str | None = None, limit: int = 50) -> list[Tick]:
    """The deployment's ticks, newest first (filtered by schedule slug and outcome)."""
    sql = _TICKS
    params: list[Any] = [deployment_id]
    if slug is not None:
        sql += " AND schedule_slug = ?"
        params.append(slug)
    if outcome is not None:
        sql += " AND outcome = ?"
        params.append(outcome)
    sql += " ORDER BY seq DESC LIMIT ?"
    params.append(int(limit))
    return [Tick(*row) for row in conn.execute(sql, params).fetchall()]
