"""What one scheduler tick decides for one schedule: pure, no database, no clock.

Given a schedule, its stored next fire time and ``now``, :func:`plan` lists the
fire times that are due (``<= now``) and decides each, in order:

1. **catch-up** picks which due times may run: ``"latest"`` the newest only,
   ``"all"`` the newest ``max_catchup_runs``, ``"none"`` the newest only if it is
   less than :data:`ON_TIME` late (or ``max_lateness``, if set). The others are
   skipped, summed up in one decision (an outage of a week on a minutely schedule
   is one line, not ten thousand).
2. **max_lateness**: a picked time later than that is ``cancelled-late``.
3. **overlap**, against a run of the deployment that is still active (or one this
   tick created): ``"allow_all"`` creates anyway, ``"skip"`` skips the time,
   ``"buffer_one"`` holds it: nothing is decided, the stored next fire time stays
   on it, and a later tick creates it once the active run has ended (at most one
   time waits; catch-up replaces it by a newer one meanwhile).

The new next fire time is the first one after ``now`` (or the held one). A
schedule that has ended gets :data:`ENDED`, so it stops being due.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fluvial.schedules import Schedule

__all__ = ["CANCELLED_LATE", "CREATE", "ENDED", "ON_TIME", "SKIPPED", "Decision", "Plan",
           "idempotency_key", "plan"]

CREATE = "created"
SKIPPED = "skipped"
CANCELLED_LATE = "cancelled-late"
DUPLICATE = "duplicate"

# how late a fire time may be seen and still count as on time for catchup="none"
ON_TIME = timedelta(seconds=60)
# the next fire time of a schedule that will never fire again (9999-12-31)
ENDED = datetime(9999, 12, 31, tzinfo=UTC)
# searching back from now for the newest due times: windows tried, smallest first
_WINDOWS = (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), timedelta(days=40),
            timedelta(days=400))


_COUNT_LIMIT = 10_000  # skipped times counted one by one; beyond that "earlier missed times"


@dataclass(frozen=True)
class Decision:
    """One fire time (or, for a skipped stretch, the first of them) and what became of it."""

    fire_time: datetime
    outcome: str  # CREATE | SKIPPED | CANCELLED_LATE
    reason: str | None = None


@dataclass
class Plan:
    """A tick's decisions for one schedule, and where its next fire time moves."""

    decisions: list[Decision] = field(default_factory=list)
    next_fire_time: datetime = ENDED
    held: datetime | None = None  # buffer_one: the due time waiting for the active run


def idempotency_key(deployment_id: str, slug: str, fire_time: datetime) -> str:
    """The key of the one run a fire time may create: deployment, schedule slug, UTC time."""
    return f"{deployment_id}:{slug}:{fire_time.astimezone(UTC).isoformat()}"


def first_fire_time(schedule: Schedule, now: datetime) -> datetime:
    """Where a new (or reset) schedule starts: its first fire time after ``now``."""
    return schedule.next_fire_time(now) or ENDED


def _describe(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _due(schedule: Schedule, start: datetime, now: datetime, keep: int
         ) -> tuple[list[datetime], int | None, datetime | None]:
    """The newest ``keep`` fire times in ``[start, now]``, how many earlier ones there are
    (None: at least one, not counted) and the last of those earlier ones."""

    def times(after: datetime) -> Iterator[datetime]:
        for fire in schedule.fire_times(after):
            if fire > now:
                return
            yield fire

    before_start = start - timedelta(microseconds=1)
    for window in (*_WINDOWS, None):
        origin = before_start if window is None else max(before_start, now - window)
        newest: deque[datetime] = deque(maxlen=keep)
        dropped = 0
        last_dropped = None
        for fire in times(origin):
            if len(newest) == keep:
                dropped += 1
                last_dropped = newest[0]
            newest.append(fire)
        if origin == before_start:
            return list(newest), dropped, last_dropped
        if len(newest) == keep:
            # the newest are all in this window; count the earlier ones up to a point
            earlier = 0
            last_earlier = None
            for fire in schedule.fire_times(before_start):
                if fire > origin:
                    break
                earlier += 1
                last_earlier = fire
                if earlier > _COUNT_LIMIT:
                    return list(newest), None, last_dropped
            return list(newest), dropped + earlier, last_dropped or last_earlier
    raise AssertionError("unreachable")  # pragma: no cover


def plan(
    schedule: Schedule,
    next_fire_time: datetime,
    now: datetime,
    active_run: str | None = None,
) -> Plan:
    """Decide the due fire times of ``schedule`` (see the module docstring).

    ``next_fire_time`` is the stored one (the first fire time not decided yet);
    ``active_run`` describes a run of the deployment that has not ended (only
    needed when ``schedule.overlap`` is not ``"allow_all"``), e.g. ``"run 3f2a... (RUNNING)"``.
    """
    result = Plan(next_fire_time=next_fire_time)
    if next_fire_time > now:
        return result
    catchup = schedule.catchup
    keep = schedule.max_catchup_runs if catchup == "all" else 1
    picked, skipped, last_skipped = _due(schedule, next_fire_time, now, keep)
    if catchup == "none":
        grace = schedule.max_lateness or ON_TIME
        late = [f for f in picked if now - f > grace]
        if late:
            skipped = None if skipped is None else skipped + len(late)
            last_skipped = late[-1]
            picked = [f for f in picked if now - f <= grace]
    if skipped is None or skipped > 0:
        count = "earlier missed fire times" if skipped is None else (
            f"{skipped} missed fire time{'s' if skipped != 1 else ''}")
        span = f"from {next_fire_time.isoformat()}"
        if last_skipped is not None and last_skipped != next_fire_time:
            span += f" to {last_skipped.isoformat()}"
        why = {"latest": "only the newest runs", "all": f"at most {keep} run{'s' if keep != 1 else ''}",
               "none": "missed times do not run"}[catchup]
        result.decisions.append(Decision(next_fire_time, SKIPPED,
                                         f"catchup={catchup} ({why}): {count} {span} skipped"))
    created_here: datetime | None = None
    for fire in picked:
        lateness = now - fire
        limit = schedule.max_lateness
        if limit is not None and lateness > limit:
            result.decisions.append(Decision(fire, CANCELLED_LATE,
                                             f"{_describe(lateness)} late, more than "
                                             f"max_lateness {_describe(limit)}"))
            continue
        blocker = active_run or (f"the run of {created_here.isoformat()}" if created_here else None)
        if blocker is not None and schedule.overlap == "skip":
            result.decisions.append(Decision(fire, SKIPPED,
                                             f"overlap=skip: {blocker} has not ended"))
            continue
        if blocker is not None and schedule.overlap == "buffer_one":
            result.held = fire
            result.next_fire_time = fire
            return result
        reason = None
        if lateness > ON_TIME:
            reason = f"{_describe(lateness)} late (catchup={catchup})"
        result.decisions.append(Decision(fire, CREATE, reason))
        created_here = fire
    result.next_fire_time = first_fire_time(schedule, now)
    return result
