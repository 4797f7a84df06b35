"""``fluvial deployment``: list, inspect, run, pause, resume and delete deployments,
and manage their schedules.

    fluvial deployment ls [--flow F] [-o json]
    fluvial deployment inspect FLOW/NAME [-o json]
    fluvial deployment run FLOW/NAME [--param k=v]... [--start-in 10m | --start-at TIME] [--watch]
    fluvial deployment pause | resume | delete FLOW/NAME
    fluvial deployment schedule ls FLOW/NAME [-o json]
    fluvial deployment schedule create FLOW/NAME (--cron EXPR | --interval S | --rrule R) [--timezone TZ]
    fluvial deployment schedule pause | resume | delete FLOW/NAME SLUG
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluvial._readable import readable_time
from fluvial.cli._output import output_option
from fluvial.cli._output import print_json as echo_json
from fluvial.cli._terminal import safe

__all__ = ["deployment", "schedule"]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``."""
    import re

    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    unit = r"(\d+(?:\.\d+)?)\s*([smhdw])"
    parts = re.findall(unit, value)
    if not parts or re.sub(unit, "", value).strip():
        raise click.BadParameter(f"expected a duration like 30s, 10m, 2h or 1d, got {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _t(value: Any, style: str = "") -> Text:
    """Text from the record, control characters escaped, never read as markup."""
    return Text(safe("-" if value is None else value), style=style)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _errors() -> tuple[type[BaseException], ...]:
    from fluvial.deployments import DeploymentNotFound
    from fluvial.exceptions import ParameterTypeError
    from fluvial.store import StoreError

    return (DeploymentNotFound, ParameterTypeError, StoreError, LookupError, ValueError)


def _get(name: str) -> Any:
    from fluvial.deployments._records import get_deployment

    try:
        return get_deployment(name)
    except _errors() as exc:
        raise click.ClickException(safe(exc)) from None


@click.group()
def deployment() -> None:
    """Manage deployments: flows stored with how and when to run them."""


@deployment.command("ls")
@click.option("--flow", "flow_name", default=None, help="Only deployments of this flow.")
@output_option
def ls(flow_name: str | None, output: str) -> None:
    """List deployments."""
    from fluvial.deployments._records import list_deployments, list_schedules

    try:
        deployments = list_deployments(flow_name)
    except _errors() as exc:
        raise click.ClickException(safe(exc)) from None
    if output == "json":
        echo_json([d.to_dict() | {"full_name": d.full_name,
                                  "schedules": [s.to_dict() for s in list_schedules(str(d.id))]}
                   for d in deployments])
        return
    console = _console()
    if not deployments:
        console.print("No deployments. Create one with: fluvial deploy path.py:flow --name NAME")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("deployment", "pool", "schedules", "limit", "status", "updated"):
        table.add_column(column, no_wrap=column in ("deployment", "updated"))
    for dep in deployments:
        schedules = list_schedules(str(dep.id))
        active = sum(s.active for s in schedules)
        table.add_row(
            _t(dep.full_name), _t(dep.work_pool or "(serve)"),
            f"{active}/{len(schedules)} active" if schedules else "-",
            str(dep.concurrency_limit) if dep.concurrency_limit else "-",
            Text("paused", style="yellow") if dep.paused else Text("ready", style="green"),
            readable_time(dep.updated),
        )
    console.print(table)


def _describe_schedule(record: Any) -> str:
    body = record.body or {}
    for key in ("cron", "rrule", "interval"):
        if key in body:
            text = f"{key} {body[key]}"
            if body.get("timezone"):
                text += f" ({body['timezone']})"
            return text
    return str(body)


@deployment.command()
@click.argument("name")
@output_option
def inspect(name: str, output: str) -> None:
    """Show a deployment (FLOW/NAME), its schedules and its latest runs."""
    from fluvial.deployments._records import connection, list_schedules
    from fluvial.deployments._runs import FlowRun

    dep = _get(name)
    schedules = list_schedules(str(dep.id))
    with connection() as conn:
        runs = [FlowRun.from_row(r) for r in conn.execute(
            f"SELECT {FlowRun.COLUMNS} FROM flow_runs WHERE deployment_id = ? "
            "ORDER BY coalesce(scheduled_start_time, created) DESC LIMIT 10", (dep.id,))]
    if output == "json":
        echo_json(dep.to_dict() | {"full_name": dep.full_name,
                                   "schedules": [s.to_dict() for s in schedules],
                                   "recent_runs": [r.to_dict() for r in runs]})
        return
    console = _console()
    console.print(Text.assemble(("Deployment ", "bold"), _t(dep.full_name, "bold")))
    fields = [("id", dep.id), ("entrypoint", dep.entrypoint), ("source", dep.source),
              ("pool", dep.work_pool or "(its serve() process)"), ("version", dep.version),
              ("description", dep.description),
              ("tags", ", ".join(dep.tags) if dep.tags else None),
              ("limit", f"{dep.concurrency_limit} ({dep.collision_strategy.value})"
               if dep.concurrency_limit else None),
              ("retries", str(dep.retries) if dep.retries else None),
              ("status", "paused" if dep.paused else "ready")]
    for label, value in fields:
        if value is not None:
            console.print(Text.assemble(f"  {label:<12}", _t(value)))
    if dep.parameters:
        console.print(Text("  parameters"))
        for key, value in dep.parameters.items():
            console.print(_t(f"    {key} = {value!r}"))
    console.print()
    console.print(Text(f"Schedules ({len(schedules)})", style="bold"))
    for record in schedules:
        console.print(Text.assemble(
            _t(f"  {record.slug}  {_describe_schedule(record)}  "),
            ("active" if record.active else "paused"),
            f"  next {readable_time(record.next_fire_time)}"))
    console.print()
    console.print(Text(f"Latest runs ({len(runs)})", style="bold"))
    for run in runs:
        console.print(Text.assemble(
            _t(f"  {str(run.id)[:8]}  {run.name or '-':<20} "),
            _t(run.state_name), f"  scheduled {readable_time(run.scheduled_start_time)}"))


def _start_time(start_in: str | None, start_at: str | None) -> dt.datetime | None:
    if start_in and start_at:
        raise click.UsageError("give --start-in or --start-at, not both")
    if start_in:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=parse_duration(start_in))
    if start_at:
        from dateutil import parser

        try:
            when = parser.parse(start_at)
        except (ValueError, OverflowError):
            raise click.BadParameter(f"cannot read {start_at!r} as a time",
                                     param_hint="--start-at") from None
        return when if when.tzinfo else when.astimezone()
    return None


@deployment.command()
@click.argument("name")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter for this run; repeat for several.")
@click.option("--start-in", help="Start after this long, e.g. 30s, 10m, 2h.")
@click.option("--start-at", help="Start at this time, e.g. '2026-01-01 08:00' (local).")
@click.option("--tag", "-t", "tags", multiple=True, help="A tag for this run; repeatable.")
@click.option("--idempotency-key", default=None, help="A second run with this key is not made.")
@click.option("--watch", is_flag=True, help="Wait for the run to end, printing its states.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="With --watch: stop waiting after this many seconds.")
def run(name: str, params: tuple[str, ...], start_in: str | None, start_at: str | None,
        tags: tuple[str, ...], idempotency_key: str | None, watch: bool,
        timeout: float | None) -> None:
    """Create a run of deployment NAME (FLOW/NAME) for a worker to pick up."""
    from fluvial.cli.run import _parse_param
    from fluvial.deployments import run_deployment, wait_for_flow_run

    when = _start_time(start_in, start_at)
    try:
        flow_run = run_deployment(name, parameters=dict(_parse_param(p) for p in params),
                                  scheduled_time=when, timeout=0, tags=tags,
                                  idempotency_key=idempotency_key, as_subflow=False)
    except _errors() as exc:
        raise click.ClickException(safe(exc)) from None
    due = readable_time(flow_run.scheduled_start_time)
    click.echo(safe(f"Created flow run {flow_run.name!r} ({flow_run.id}), scheduled for {due}."))
    if not watch:
        return

    def changed(current: Any) -> None:
        message = f": {current.state_message}" if current.state_message else ""
        click.echo(safe(f"  {dt.datetime.now():%H:%M:%S}  {current.state_name}{message}"))

    final = wait_for_flow_run(flow_run.id, timeout, on_change=changed)
    if not final.is_final():
        click.echo(f"Still {final.state_name} after {timeout} s.", err=True)
        sys.exit(1)
    if final.state_type != "COMPLETED":
        sys.exit(1)


def _set_paused(name: str, paused: bool) -> None:
    from fluvial.deployments._records import set_paused

    try:
        dep = set_paused(name, paused)
    except _errors() as exc:
        raise click.ClickException(safe(exc)) from None
    click.echo(safe(f"{'Paused' if paused else 'Resumed'} {dep.full_name}."))


@deployment.command()
@click.argument("name")
def pause(name: str) -> None:
    """Pause a deployment: its schedules create no runs until it is resumed."""
    _set_paused(name, True)


@deployment.command()
@click.argument("name")
def resume(name: str) -> None:
    """Resume a paused deployment."""
    _set_paused(name, False)


@deployment.command()
@click.argument("name")
def delete(name: str) -> None:
    """Delete a deployment and its schedules (its past runs stay in the record)."""
    from fluvial.deployments._records import delete_deployment

    try:
        dep = delete_deployment(name)
    except _errors() as exc:
        raise click.ClickException(safe(exc)) from None
    click.echo(safe(f"Deleted {dep.full_name}."))


@deployment.group()
def schedule() -> None:
    """Manage a deployment's schedules."""


@schedule.command("ls")
@click.argument("name")
@output_option
def schedule_ls(name: str, output: str) -> None:
    """List the schedules of deployment NAME (FLOW/NAME)."""
    from fluvial.deployments._records import list_schedules

    dep = _get(name)
    records = list_schedules(str(dep.id))
    if output == "json":
        echo_json([r.to_dict() for r in records])
        return
    console = _console()
    if not records:
        console.print(f"{dep.full_name} has no schedules.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("slug", "schedule", "status", "next", "last fired"):
        table.add_column(column, no_wrap=True)
    for r in records:
        table.add_row(_t(r.slug), _t(_describe_schedule(r)),
                      "active" if r.active else "paused", readable_time(r.next_fire_time),
                      readable_time(r.last_fired_time))
    console.print(table)


@schedule.command("create")
@click.argument("name")
@click.option("--cron", help="A cron expression, e.g. '0 8 * * *'.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), help="Seconds.")
@click.option("--rrule", help="An RFC 5545 recurrence rule.")
@click.option("--timezone", help="The schedule's time zone (IANA name).")
def schedule_create(name: str, cron: str | None, interval: float | None, rrule: str | None,
                    timezone: str | None) -> None:
    """Add a schedule to deployment NAME."""
    from fluvial.deployments._flow_api import build_schedules
    from fluvial.deployments._records import add_schedules

    if sum(x is not None for x in (cron, interval, rrule)) != 1:
        raise click.UsageError("give exactly one of --cron, --interval, --rrule")
    try:
        schedules = build_schedules(cron=cron, interval=interval, rrule=rrule, timezone=timezone)
        slugs = add_schedules(name, schedules)
    except (*_errors(), ImportError) as exc:  # type: ignore[misc]
        raise click.ClickException(safe(exc)) from None
    click.echo(f"Added schedule {slugs[0]} to {name}.")


def _schedule_action(name: str, slug: str, action: str) -> None:
    from fluvial.deployments._records import delete_schedule, set_schedule_active

    try:
        if action == "delete":
            full = delete_schedule(name, slug)
        else:
            full = set_schedule_active(name, slug, action == "resume")
    except _errors() as exc:
        raise click.ClickException(safe(exc)) from None
    past = {"pause": "Paused", "resume": "Resumed", "delete": "Deleted"}[action]
    click.echo(f"{past} schedule {full} of {name}.")


@schedule.command("pause")
@click.argument("name")
@click.argument("slug")
def schedule_pause(name: str, slug: str) -> None:
    """Pause schedule SLUG (or a unique prefix of it) of deployment NAME."""
    _schedule_action(name, slug, "pause")


@schedule.command("resume")
@click.argument("name")
@click.argument("slug")
def schedule_resume(name: str, slug: str) -> None:
    """Resume schedule SLUG of deployment NAME."""
    _schedule_action(name, slug, "resume")


@schedule.command("delete")
@click.argument("name")
@click.argument("slug")
def schedule_delete(name: str, slug: str) -> None:
    """Delete schedule SLUG of deployment NAME."""
    _schedule_action(name, slug, "delete")
