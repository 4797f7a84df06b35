"""``fluvial runs cancel`` and ``fluvial runs resume``: changing a run through the record.

    fluvial runs cancel RUN_ID [--grace SECONDS]
    fluvial runs resume RUN_ID [--input JSON]
"""

from __future__ import annotations

import json

import click

__all__ = ["cancel", "resume"]


def _resolve(run_id: str) -> str:
    from fluvial.cli.runs import _resolve as resolve

    return str(resolve(run_id))


@click.command()
@click.argument("run_id")
@click.option("--grace", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL for a running run's process.")
def cancel(run_id: str, grace: float) -> None:
    """Cancel a flow run: a waiting one at once, a running one by stopping its process."""
    from fluvial.flow_runs import cancel_flow_run
    from fluvial.store import StoreError

    full = _resolve(run_id)
    try:
        state = cancel_flow_run(full, grace=grace)
    except (ValueError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    if state == "CANCELLED":
        click.echo(f"Cancelled flow run {full}.")
    else:
        click.echo(f"Flow run {full} is Cancelling: its worker is stopping it.")


@click.command()
@click.argument("run_id")
@click.option("--input", "run_input", default=None, metavar="JSON",
              help="A JSON value handed to the paused flow (pause_flow_run's return value).")
def resume(run_id: str, run_input: str | None) -> None:
    """Resume a paused flow run."""
    from fluvial.exceptions import NotPausedError
    from fluvial.flow_runs import resume_flow_run
    from fluvial.store import StoreError

    value = None
    if run_input is not None:
        try:
            value = json.loads(run_input)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--input") from None
    full = _resolve(run_id)
    try:
        resume_flow_run(full, value)
    except (NotPausedError, ValueError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Resumed flow run {full}.")
