"""fluvial.scheduler: deployments' schedules become SCHEDULED flow runs, each fire time once.

    run_scheduler_once(conn=None, now=None, deployment_ids=None) -> TickSummary
    Scheduler(conn=None, clock=time.time, poll_interval=5.0).run(stop) / .run_once()
    plan(schedule, next_fire_time, now, active_run) -> Plan     the pure decision
    list_ticks(conn, deployment_id) -> [Tick]                   what was decided, and why
    python -m fluvial.scheduler [--once] [--duration S]         a standalone scheduler

There is no scheduler service: every worker and ``serve()`` process ticks, and the
run record makes that safe (compare-and-set on the schedule's next fire time, a
unique idempotency key per run; see :mod:`._tick`). The policies (catch-up,
overlap, lateness) are decided in :mod:`._plan`; docs/behaviour.md has the rules.

Modules: ``_plan`` (pure decisions), ``_tick`` (one tick on the record), ``_loop``
(the paced loop), ``_ticks`` (reading decisions back).
"""

from __future__ import annotations

from fluvial.scheduler._loop import Scheduler
from fluvial.scheduler._plan import ENDED, ON_TIME, Decision, Plan, idempotency_key, plan
from fluvial.scheduler._tick import TickSummary, run_scheduler_once
from fluvial.scheduler._ticks import Tick, find_deployment, list_ticks

__all__ = [
    "ENDED",
    "ON_TIME",
    "Decision",
    "Plan",
    "Scheduler",
    "Tick",
    "TickSummary",
    "find_deployment",
    "idempotency_key",
    "list_ticks",
    "plan",
    "run_scheduler_once",
]
