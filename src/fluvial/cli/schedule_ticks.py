"""``fluvial deployment schedule ticks FLOW/NAME``: what the scheduler decided, and why.

    fluvial deployment schedule ticks FLOW/NAME [--slug SLUG] [--outcome O] [--limit N] [-o json]

Every fire time a scheduler decided is one line, newest first: ``created`` (with
the run), ``skipped`` (the reason: catch-up, overlap, an unreadable schedule),
``cancelled-late`` (past ``max_lateness``) or ``duplicate`` (its run existed
already). A paused deployment, or an inactive schedule, is not ticked at all; the
header says so. The ``deployment`` group itself lives in :mod:`fluvial.cli.deployments`.
"""

from __future__ import annotations

import json

import click

from fluvial.cli._output import output_option, timestamp
from fluvial.cli._terminal import safe

__all__ = ["ticks"]

OUTCOMES = ("created", "skipped", "cancelled-late", "duplicate")


@click.command("ticks")
@click.argument("name")
@click.option("--slug", default=None, help="only this schedule's ticks")
@click.option("--outcome", type=click.Choice(OUTCOMES), default=None,
              help="only ticks with this outcome")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="how many of the newest ticks")
@output_option
def ticks(name: str, slug: str | None, outcome: str | None, limit: int, output: str) -> None:
    """Show the scheduler's decisions for deployment NAME (FLOW/NAME or its id)."""
    from fluvial.scheduler import find_deployment, list_ticks
    from fluvial.store import StoreError
    from fluvial.store.connection import reading

    try:
        with reading() as conn:
            found = find_deployment(conn, name)
            if found is None:
                raise click.ClickException(f"no deployment {name!r} (give FLOW/NAME or its id)")
            deployment_id, full_name, paused = found
            rows = list_ticks(conn, deployment_id, slug=slug, outcome=outcome, limit=limit)
            schedules = conn.execute(
                "SELECT slug, active, next_fire_time FROM deployment_schedules "
                "WHERE deployment_id = ? ORDER BY slug", (deployment_id,)).fetchall()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if output == "json":
        click.echo(json.dumps({
            "deployment": full_name, "id": deployment_id, "paused": paused,
            "schedules": [{"slug": s, "active": bool(a), "next_fire_time": n}
                          for s, a, n in schedules],
            "ticks": [t.to_dict() for t in rows]}, indent=2, sort_keys=True))
        return
    if paused:
        click.echo(f"Deployment {safe(full_name)} is paused: its schedules create no runs.")
    for s, active, next_fire in schedules:
        state = f"next fire time {timestamp(next_fire)}" if active else "inactive (paused)"
        click.echo(f"Schedule {safe(s)}: {state}")
    if not rows:
        click.echo("No ticks recorded yet.")
        return
    # one line per tick, so a long reason is never wrapped away
    click.echo(f"Scheduler ticks of {safe(full_name)}, newest first "
               "(fire time, schedule, outcome, run or reason):")
    for t in rows:
        detail = t.flow_run_id or ""
        if t.reason:
            detail = f"{detail}  {t.reason}" if detail else t.reason
        click.echo(f"  {timestamp(t.fire_time)}  {safe(t.schedule_slug or '-')}  "
                   f"{t.outcome:<14} {safe(detail)}")
