"""``fluvial.yaml``: a project's deployments, for ``fluvial deploy --all``; and deploying one.

The file has the shape of Prefect's ``prefect.yaml`` for the parts that apply
(no build/push/pull steps, no images)::

    name: my-project
    deployments:
      - name: nightly
        entrypoint: flows.py:etl          # relative to the file's directory
        parameters: {n: 3}
        tags: [etl]
        description: null
        version: null
        work_pool: {name: default}
        concurrency_limit: null           # or {limit: 1, collision_strategy: CANCEL_NEW}
        paused: false
        schedules:
          - cron: "0 8 * * *"
            timezone: Europe/London
          - interval: 3600
          - rrule: "FREQ=WEEKLY;BYDAY=MO"

An unknown key is an error naming the deployment and the key (a typo must not
silently drop a schedule).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fluvial.deployments._model import Deployment
from fluvial.exceptions import ProjectError

__all__ = ["TEMPLATE", "deploy_entrypoint", "load_project", "write_template"]

FILE_NAME = "fluvial.yaml"

TEMPLATE = """\
# fluvial.yaml: this project's deployments. `fluvial deploy --all` stores every one of them;
# `fluvial worker start --pool <pool>` runs them. The shape is prefect.yaml's (no images).
name: {name}
deployments: {deployments}
# - name: nightly
#   entrypoint: flows.py:my_flow      # path relative to this file, then the flow's variable
#   parameters: {{}}
#   tags: []
#   work_pool: {{name: default}}
#   concurrency_limit: null           # or {{limit: 1, collision_strategy: CANCEL_NEW}}
#   schedules:
#     - cron: "0 8 * * *"
#       timezone: UTC
#     - interval: 3600                # seconds
"""

_KEYS = {"name", "entrypoint", "parameters", "tags", "description", "version", "work_pool",
         "concurrency_limit", "paused", "schedules", "retries", "triggers"}
_SCHEDULE_KEYS = {"cron", "interval", "rrule", "timezone", "active", "anchor_date", "day_or",
                  "parameters", "slug", "catchup", "max_catchup_runs", "overlap",
                  "max_lateness"}


def write_template(directory: Path, force: bool = False,
                   entries: list[dict[str, Any]] | None = None) -> Path:
    path = directory / FILE_NAME
    if path.exists() and not force:
        raise ProjectError(f"{path} exists already (--force overwrites it)")
    import yaml

    body = "[]" if not entries else "\n" + yaml.safe_dump(entries, sort_keys=False).rstrip()
    path.write_text(TEMPLATE.format(name=directory.resolve().name, deployments=body))
    return path


def load_project(path: Path) -> list[dict[str, Any]]:
    """The deployment entries of the ``fluvial.yaml`` at ``path``, checked for unknown keys."""
    import yaml

    if not path.is_file():
        raise ProjectError(f"no {path} here: `fluvial init` writes one")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}") from None
    entries = data.get("deployments") or []
    if not isinstance(entries, list):
        raise ProjectError(f"{path}: 'deployments' must be a list")
    for i, entry in enumerate(entries):
        where = f"{path}: deployment {entry.get('name', i)!r}" if isinstance(entry, dict) \
            else f"{path}: deployment {i}"
        if not isinstance(entry, dict):
            raise ProjectError(f"{where} must be a mapping")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ProjectError(f"{where}: unknown key(s) {sorted(unknown)}")
        for key in ("name", "entrypoint"):
            if not entry.get(key):
                raise ProjectError(f"{where}: '{key}' is required")
        for schedule in entry.get("schedules") or []:
            if not isinstance(schedule, dict):
                raise ProjectError(f"{where}: each schedule must be a mapping")
            bad = set(schedule) - _SCHEDULE_KEYS
            if bad:
                raise ProjectError(f"{where}: schedule has unknown key(s) {sorted(bad)}")
    return entries


def schedule_from_entry(entry: dict[str, Any]) -> Any:
    """A schedule object from one ``schedules:`` item."""
    from fluvial import schedules as sched

    options = {k: v for k, v in entry.items() if k not in ("cron", "interval", "rrule")}
    kinds = [k for k in ("cron", "interval", "rrule") if k in entry]
    if len(kinds) != 1:
        raise ProjectError(f"a schedule needs exactly one of cron, interval, rrule: {entry}")
    kind = kinds[0]
    if kind == "cron":
        return sched.Cron(entry["cron"], **options)
    if kind == "rrule":
        return sched.RRule(entry["rrule"], **options)
    every = entry["interval"]
    if isinstance(every, (int, float)) and not isinstance(every, bool):
        every = dt.timedelta(seconds=every)
    return sched.Interval(every, **options)


def deploy_entrypoint(
    entrypoint: str,
    name: str,
    *,
    source: Path | None = None,
    schedules: list[Any] | None = None,
    parameters: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    work_pool: str | None = "default",
    concurrency_limit: int | None = None,
    collision_strategy: Any = None,
    version: str | None = None,
    description: str | None = None,
    paused: bool = False,
    retries: int = 0,
    triggers: list[Any] | None = None,
) -> Deployment:
    """Load the flow at ``entrypoint`` (relative to ``source``), check the options, store it."""
    from fluvial.deployments._entrypoint import load_flow
    from fluvial.deployments._flow_api import to_deployment

    flow = load_flow(entrypoint, source)
    dep = to_deployment(
        flow, name, schedules=schedules or None, parameters=parameters, tags=tags,
        work_pool_name=work_pool, concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy, version=version, description=description,
        paused=paused, entrypoint=entrypoint, retries=retries, triggers=triggers,
    )
    dep.source = str(source.resolve()) if source is not None else None
    dep.apply()
    return dep


def deploy_project(path: Path, names: list[str] | None = None) -> list[Deployment]:
    """Deploy every entry of the ``fluvial.yaml`` at ``path`` (or those named)."""
    entries = load_project(path)
    if names:
        missing = sorted(set(names) - {e["name"] for e in entries})
        if missing:
            raise ProjectError(f"{path} has no deployment(s) {missing}")
        entries = [e for e in entries if e["name"] in names]
    out = []
    for entry in entries:
        pool = entry.get("work_pool")
        pool_name = pool.get("name") if isinstance(pool, dict) else pool
        limit: Any = entry.get("concurrency_limit")
        strategy = None
        if isinstance(limit, dict):
            strategy = limit.get("collision_strategy")
            limit = limit.get("limit")
        out.append(deploy_entrypoint(
            entry["entrypoint"], entry["name"], source=path.parent,
            schedules=[schedule_from_entry(s) for s in entry.get("schedules") or []],
            parameters=entry.get("parameters") or {}, tags=entry.get("tags") or [],
            work_pool=pool_name or "default", concurrency_limit=limit,
            collision_strategy=strategy, version=entry.get("version"),
            description=entry.get("description"), paused=bool(entry.get("paused")),
            retries=entry.get("retries") or 0, triggers=entry.get("triggers"),
        ))
    return out
