"""What ``Flow.to_deployment``, ``Flow.serve``, ``Flow.deploy`` and ``Flow.from_source`` do.

``flows.py`` calls these; they live here so the user API stays small and the
platform stays a layer above it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluvial.deployments._model import ConcurrencyLimitStrategy, Deployment

if TYPE_CHECKING:
    from fluvial.flows import Flow

__all__ = ["build_schedules", "deploy", "from_source", "to_deployment"]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def build_schedules(
    cron: str | Iterable[str] | None = None,
    interval: Any = None,
    rrule: str | Iterable[str] | None = None,
    schedules: Sequence[Any] | None = None,
    timezone: str | None = None,
    anchor_date: dt.datetime | None = None,
) -> list[Any]:
    """Schedule objects from the ``cron=``/``interval=``/``rrule=``/``schedules=`` shorthands."""
    given = [x for x in (cron, interval, rrule, schedules) if x is not None]
    if len(given) > 1:
        raise ValueError("give only one of cron=, interval=, rrule= or schedules=")
    if not given:
        return []
    from fluvial import schedules as sched

    out: list[Any] = list(schedules or [])
    for expression in _as_list(cron):
        out.append(sched.Cron(expression, timezone=timezone))
    for every in _as_list(interval):
        if not isinstance(every, dt.timedelta):
            if isinstance(every, bool) or not isinstance(every, (int, float)) or every <= 0:
                raise ValueError(f"interval must be a positive number of seconds or a "
                                 f"timedelta, got {every!r}")
            every = dt.timedelta(seconds=every)
        out.append(sched.Interval(every, anchor_date=anchor_date, timezone=timezone))
    for rule in _as_list(rrule):
        out.append(sched.RRule(rule, timezone=timezone))
    return out


def _limit(concurrency_limit: Any, collision_strategy: Any) -> tuple[int | None, Any]:
    """``concurrency_limit`` may be an int, or an object/dict with a limit and strategy."""
    if concurrency_limit is None or isinstance(concurrency_limit, int):
        return concurrency_limit, collision_strategy or ConcurrencyLimitStrategy.ENQUEUE
    if isinstance(concurrency_limit, dict):
        limit = concurrency_limit.get("limit")
        strategy = concurrency_limit.get("collision_strategy")
    else:
        limit = getattr(concurrency_limit, "limit", concurrency_limit)
        strategy = getattr(concurrency_limit, "collision_strategy", None)
    return limit, collision_strategy or strategy or ConcurrencyLimitStrategy.ENQUEUE


def to_deployment(
    flow: Flow,
    name: str,
    *,
    interval: Any = None,
    cron: str | Iterable[str] | None = None,
    rrule: str | Iterable[str] | None = None,
    schedules: Sequence[Any] | None = None,
    timezone: str | None = None,
    paused: bool = False,
    parameters: dict[str, Any] | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    work_pool_name: str | None = None,
    concurrency_limit: Any = None,
    collision_strategy: Any = None,
    entrypoint: str | None = None,
    retries: int = 0,
    triggers: Sequence[Any] | None = None,
) -> Deployment:
    """A ``Deployment`` of ``flow`` (not stored yet: ``apply()``, ``serve`` or ``deploy`` do)."""
    from fluvial.deployments._entrypoint import entrypoint_of
    from fluvial.deployments._parameters import parameter_schema, validate_deploy_parameters

    source = getattr(flow, "_fluvial_source", None)
    if entrypoint is None:
        entrypoint = getattr(flow, "_fluvial_entrypoint", None) or entrypoint_of(flow)
    limit, strategy = _limit(concurrency_limit, collision_strategy)
    return Deployment(
        name=name,
        flow_name=flow.name,
        entrypoint=entrypoint,
        source=source,
        parameters=validate_deploy_parameters(flow, dict(parameters or {})),
        parameter_schema=parameter_schema(flow),
        tags=sorted(set(tags or ())),
        description=description if description is not None else flow.description,
        version=version if version is not None else flow.version,
        work_pool=work_pool_name,
        concurrency_limit=limit,
        collision_strategy=strategy,
        paused=paused,
        schedules=build_schedules(cron, interval, rrule, schedules, timezone),
        retries=retries,
        triggers=_checked_triggers(f"deployment {flow.name}/{name}", triggers),
        flow=flow,
    )


def _checked_triggers(where: str, triggers: Sequence[Any] | None) -> list[Any] | None:
    """``triggers`` as trigger objects, checked now (a bad one fails before anything is stored)."""
    if triggers is None:
        return None
    from fluvial.automations import check_deployment_trigger

    return [check_deployment_trigger(where, t, i) for i, t in enumerate(triggers)]


def deploy(flow: Flow, name: str, work_pool_name: str = "default", *, print_next_steps: bool = True,
           **options: Any) -> str:
    """``flow.deploy(...)``: store the deployment for the workers of ``work_pool_name``."""
    dep = to_deployment(flow, name, work_pool_name=work_pool_name, **options)
    dep_id = dep.apply()
    if print_next_steps:
        print(f"Deployment {dep.full_name!r} stored ({dep_id}). Start a worker with:\n"
              f"    fluvial worker start --pool {work_pool_name}\n"
              f"and run it with:\n    fluvial deployment run {dep.full_name!r}")
    return dep_id


def from_source(source: str | Path, entrypoint: str) -> Flow:
    """The flow at ``entrypoint`` (``path.py:flow``) inside ``source``: a local directory or
    a git URL (cloned with ``git``). Its deployments find it there again."""
    from fluvial.deployments._entrypoint import is_git_url, load_flow, resolve_source

    source_text = str(source)
    directory = resolve_source(source_text)
    flow = load_flow(entrypoint, directory)
    kept = source_text if is_git_url(source_text) else str(directory)
    flow._fluvial_source = kept  # type: ignore[attr-defined]
    flow._fluvial_entrypoint = entrypoint  # type: ignore[attr-defined]
    return flow
