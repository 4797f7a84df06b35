"""``fluvial events emit | stream | cleanup``: put events in the log, tail it, trim it."""

from __future__ import annotations

import datetime as dt
import json

import click

from fluvial.cli._output import safe

__all__ = ["events"]


@click.group()
def events() -> None:
    """Emit and watch events."""


@events.command()
@click.argument("name")
@click.option("--resource-id", required=True, help="The resource the event is about.")
@click.option("--resource", "labels", multiple=True, metavar="KEY=VALUE",
              help="Another resource label (repeatable).")
@click.option("--payload", default=None, help="A JSON object.")
def emit(name: str, resource_id: str, labels: tuple[str, ...], payload: str | None) -> None:
    """Emit event NAME about --resource-id."""
    from fluvial.events import emit_event
    from fluvial.store import get_recorder

    resource = {"fluvial.resource.id": resource_id}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--resource")
        resource[key] = value
    body = {}
    if payload is not None:
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
        if not isinstance(body, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--payload")
    try:
        event = emit_event(name, resource, payload=body)
    except (TypeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    recorder = get_recorder()
    if recorder is not None:
        recorder.flush()
    click.echo(f"Emitted {event.event} ({event.id}).")


@events.command()
@click.option("--filter", "name_filter", default=None,
              help="Only events whose name matches (a trailing * matches a prefix).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Stop after this many events.")
def stream(name_filter: str | None, as_json: bool, limit: int | None) -> None:
    """Print events as they are recorded (Ctrl-C stops)."""
    from fluvial.events import stream as tail

    seen = 0
    try:
        for event in tail(name_filter):
            seen += 1
            if as_json:
                click.echo(json.dumps(event.to_dict(), default=str))
            else:
                when = dt.datetime.fromtimestamp(event.occurred).strftime("%H:%M:%S.%f")[:-3]
                click.echo(safe(f"{when}  {event.event}  {event.resource_id}").plain)
            if limit is not None and seen >= limit:
                break
    except KeyboardInterrupt:
        pass


@events.command()
@click.option("--days", type=float, default=None,
              help="Keep this many days (default FLUVIAL_EVENTS_RETENTION_DAYS, 7).")
def cleanup(days: float | None) -> None:
    """Delete events older than the retention."""
    from fluvial.events import cleanup as run_cleanup

    click.echo(f"Deleted {run_cleanup(days)} events.")
