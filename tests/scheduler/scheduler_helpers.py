"""Helpers for the scheduler tests: deployments written with plain SQL, child-process settings."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fluvial.schedules import Schedule

AddDeployment = Callable[..., str]


def insert_deployment(conn: Any, schedules: list[Schedule], *, name: str | None = None,
                      flow_name: str = "etl", paused: bool = False,
                      parameters: dict[str, Any] | None = None, tags: list[str] | None = None,
                      work_pool: str | None = "default",
                      next_fire_time: float | None = None) -> str:
    """A deployment row and one ``deployment_schedules`` row per schedule; its id."""
    from fluvial.store.connection import transaction

    dep_id = str(uuid.uuid4())
    with transaction(conn):
        conn.execute(
            "INSERT INTO deployments (id, flow_name, name, entrypoint, parameters, tags, "
            "work_pool, paused, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
            (dep_id, flow_name, name or f"dep-{dep_id[:8]}", "flows.py:etl",
             json.dumps(parameters or {}), json.dumps(tags or []), work_pool, int(paused)))
        for schedule in schedules:
            conn.execute(
                "INSERT INTO deployment_schedules (id, deployment_id, slug, schedule, active, "
                "next_fire_time) VALUES (?, ?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), dep_id, schedule.derived_slug,
                 json.dumps(schedule.to_dict()), int(schedule.active), next_fire_time))
    return dep_id


def env_for_subprocess() -> dict[str, str]:
    """The test's store settings, for a child process."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
