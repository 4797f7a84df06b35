"""``fluvial runs``: list, inspect and read the logs of recorded flow runs.

    fluvial runs ls [--flow NAME] [--state STATE] [--limit N] [-o json]
    fluvial runs inspect RUN_ID [-o json]
    fluvial runs logs RUN_ID

RUN_ID may be any unique prefix of a flow run id, or `latest`. Reads the store only.
Everything printed from the record goes through :func:`fluvial.cli._terminal.safe`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any
from uuid import UUID

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluvial.cli._errors import describe
from fluvial.cli._output import output_option, print_json
from fluvial.cli._terminal import safe
from fluvial.store import StoreError, queries

__all__ = ["runs"]

_STATE_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "bold red",
    "CANCELLED": "yellow",
    "RUNNING": "cyan",
    "PENDING": "dim",
    "SCHEDULED": "dim",
    "PAUSED": "yellow",
}


def _console() -> Console:
    # Created per command so that click's CliRunner captures the output.
    return Console(highlight=False, soft_wrap=False)


def _time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _state(state_type: str | None, state_name: str | None) -> Text:
    if state_type is None:
        return Text("-", style="dim")
    label = safe(state_name or state_type.title())
    return Text(label, style=_STATE_STYLES.get(state_type, ""))


def _field(console: Console, label: str, value: str | Text | None, *, lines: bool = False) -> None:
    """One ``label value`` line; user text is never read as rich markup, and its control
    characters are escaped."""
    shown = value if isinstance(value, Text) else safe("-" if value is None else value, lines=lines)
    console.print(Text.assemble(f"  {label:<12}", shown))


def _resolve(run_id: str) -> UUID:
    """A full run id from a unique prefix, or ``latest`` for the most recent flow run."""
    try:
        if run_id == "latest":
            newest = queries.list_flow_runs(limit=1)
            if not newest:
                raise click.ClickException("no flow runs recorded yet")
            return newest[0].id
        return queries.resolve_run_id(run_id)
    except StoreError as exc:
        raise click.ClickException(describe(exc)) from exc


@click.group()
def runs() -> None:
    """Inspect recorded flow runs."""


@runs.command("ls")
@click.option("--flow", "flow_name", default=None, help="Only runs of this flow.")
@click.option("--state", default=None, help="Only runs in this state (type or name).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@output_option
def ls(flow_name: str | None, state: str | None, limit: int, output: str) -> None:
    """List the most recent flow runs."""
    try:
        records = queries.list_flow_runs(flow_name=flow_name, state=state, limit=limit)
    except StoreError as exc:
        raise click.ClickException(describe(exc)) from exc
    if output == "json":
        print_json([_as_json(run) for run in records])
        return
    console = _console()
    if not records:
        console.print("No flow runs recorded.")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("flow")
    table.add_column("name")
    table.add_column("state")
    table.add_column("start", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for run in records:
        table.add_row(
            str(run.id)[:8],
            Text(safe(run.flow_name or "-")),
            Text(safe(run.name or "-")),
            _state(run.state_type, run.state_name),
            _time(run.start_time),
            _duration(run.duration),
        )
    console.print(table)


def _as_json(record: Any) -> dict[str, Any]:
    """A record as JSON-ready data (ids as strings, times as epoch seconds)."""
    out = dataclasses.asdict(record)
    duration = getattr(record, "duration", None)
    if duration is not None or hasattr(record, "duration"):
        out["duration"] = duration
    return out


@runs.command()
@click.argument("run_id")
@output_option
def inspect(run_id: str, output: str) -> None:
    """Show a flow run: its states, and every task run."""
    flow_run_id = _resolve(run_id)
    try:
        run = queries.get_flow_run(flow_run_id)
        history = queries.state_history(flow_run_id)
        tasks = queries.task_runs(flow_run_id)
    except StoreError as exc:
        raise click.ClickException(describe(exc)) from exc
    if output == "json":
        print_json(_as_json(run) | {"state_history": [_as_json(s) for s in history],
                                    "task_runs": [_as_json(t) for t in tasks]})
        return
    console = _console()
    console.print(Text.assemble(("Flow run ", "bold"), (str(run.id), "bold")))
    _field(console, "flow", run.flow_name)
    _field(console, "name", run.name)
    _field(console, "state", _state(run.state_type, run.state_name))
    if run.state_message:
        _field(console, "message", run.state_message, lines=True)
    _field(console, "start", _time(run.start_time))
    _field(console, "duration", _duration(run.duration))
    _field(console, "driver", f"pid {run.pid} on {run.hostname}")
    if run.tags:
        _field(console, "tags", ", ".join(run.tags))
    if run.parameters:
        _field(console, "parameters", "")
        for name, value in run.parameters.items():
            console.print(Text(safe(f"    {name} = {value}", lines=True)))

    console.print()
    console.print(Text("State history", style="bold"))
    states = Table(box=None, pad_edge=False)
    states.add_column("time", no_wrap=True)
    states.add_column("state")
    states.add_column("message")
    for state in history:
        states.add_row(_time(state.ts), _state(state.type, state.name),
                       Text(safe(state.message or "", lines=True)))
    console.print(states)

    console.print()
    console.print(Text(f"Task runs ({len(tasks)})", style="bold"))
    if not tasks:
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("task run")
    table.add_column("state")
    table.add_column("duration", justify="right", no_wrap=True)
    for task in tasks:
        table.add_row(
            Text(safe(task.name or "-")),
            _state(task.state_type, task.state_name),
            _duration(task.duration),
        )
    console.print(table)
    failed = [t for t in tasks if t.state_type in ("FAILED", "CRASHED") and t.state_message]
    if failed:
        console.print()
        console.print(Text("Failures", style="bold red"))
        for task in failed:
            console.print(Text.assemble((f"{safe(task.name)}: ", "bold"),
                                        safe(task.state_message or "", lines=True)))


@runs.command()
@click.argument("run_id")
def logs(run_id: str) -> None:
    """Print the logs of a flow run and of its task runs, in time order."""
    flow_run_id = _resolve(run_id)
    try:
        records = queries.logs(flow_run_id)
    except StoreError as exc:
        raise click.ClickException(describe(exc)) from exc
    console = _console()
    if not records:
        console.print("No logs recorded for this run.")
        return
    for record in records:
        source = safe(record.task_run_name or "flow")
        level = safe(logging.getLevelName(record.level))
        console.print(
            Text.assemble(
                (_time(record.ts), "dim"),
                " ",
                (f"{level:<8}", ""),
                " ",
                (f"[{source}] ", "bold"),
                safe(record.message, lines=True),
            )
        )


@runs.command()
@click.argument("run_id")
def retry(run_id: str) -> None:
    """Re-run a failed or crashed flow run with its original parameters.

    Task runs of the original that completed with a persisted result
    (``persist_result=True``) end ``Cached`` instead of computing again.
    """
    from fluvial.cli.run import find_flow, report
    from fluvial.orchestration.resume import load_run_inputs, resuming

    flow_run_id = _resolve(run_id)
    record = queries.get_flow_run(flow_run_id)
    if record.state_type not in ("FAILED", "CRASHED"):
        raise click.ClickException(
            f"flow run {flow_run_id} ended {safe(record.state_name)}; only failed or crashed runs "
            "can be retried")
    try:
        inputs = load_run_inputs(flow_run_id)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(safe(exc)) from None
    if inputs.source_file is None:
        raise click.ClickException(f"the flow of run {flow_run_id} was not defined in a file")
    flow_obj = find_flow(inputs.source_file, inputs.function_name, inputs.flow_name,
                         inputs.module_name)
    with resuming(inputs.lineage_id):
        state = flow_obj(**inputs.parameters, return_state=True)
    report(state)
