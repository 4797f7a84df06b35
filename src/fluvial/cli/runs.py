"""``fluvial runs``: list, inspect and read the logs of recorded flow runs.

    fluvial runs ls [--flow NAME] [--state STATE] [--limit N] [-o json]
    fluvial runs inspect RUN_ID [--limit N | --all] [-o json]
    fluvial runs logs RUN_ID

RUN_ID may be any unique prefix of a flow run id, or `latest`. Reads the store only.
Everything printed from the record goes through :func:`fluvial.cli._terminal.safe`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluvial._readable import readable_duration, readable_time
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
            readable_time(run.start_time),
            readable_duration(run.duration),
        )
    console.print(table)


def _as_json(record: Any) -> dict[str, Any]:
    """A record as JSON-ready data (ids as strings, times as epoch seconds)."""
    out = dataclasses.asdict(record)
    duration = getattr(record, "duration", None)
    if duration is not None or hasattr(record, "duration"):
        out["duration"] = duration
    return out


DEFAULT_TASK_RUNS = 50
"""How many task runs ``runs inspect`` lists unless told (``--limit N``, ``--all``)."""


@dataclasses.dataclass
class TaskRunView:
    """What ``runs inspect`` shows of a flow run's task runs, read from the store as
    it is consumed: ``counts`` per task and state (failures first), their ``total`` and
    ``failed``, and ``runs()``/``failures()`` streaming at most ``limit`` task runs
    (None: all of them), failed and crashed ones first. Also for other front ends
    (``-o json``, a UI): memory and time do not grow with the run's size unless all
    rows are asked for, and then only the time does."""

    flow_run_id: UUID
    limit: int | None
    counts: list[queries.TaskRunCount]

    @property
    def total(self) -> int:
        return sum(c.count for c in self.counts)

    @property
    def failed(self) -> int:
        return sum(c.count for c in self.counts if c.state_type in queries.FAILURE_TYPES)

    @property
    def shown(self) -> int:
        return self.total if self.limit is None else min(self.limit, self.total)

    def runs(self) -> Iterator[queries.TaskRunRecord]:
        return queries.iter_task_runs(self.flow_run_id, limit=self.limit)

    def failures(self) -> Iterator[queries.TaskRunRecord]:
        limit = self.failed if self.limit is None else min(self.limit, self.failed)
        return queries.iter_task_runs(self.flow_run_id, limit=limit)


def task_run_view(flow_run_id: UUID, limit: int | None = DEFAULT_TASK_RUNS) -> TaskRunView:
    """The task runs of ``flow_run_id`` as ``runs inspect`` pages them (one aggregate
    query now; rows when iterated)."""
    return TaskRunView(flow_run_id, limit, queries.task_run_counts(flow_run_id))


@runs.command()
@click.argument("run_id")
@click.option("--limit", default=DEFAULT_TASK_RUNS, show_default=True,
              type=click.IntRange(min=0), help="List at most N task runs (failures first).")
@click.option("--all", "show_all", is_flag=True, help="List every task run (streamed).")
@output_option
def inspect(run_id: str, limit: int, show_all: bool, output: str) -> None:
    """Show a flow run: its states, its task runs counted per task and state, and the
    first task runs (failed and crashed ones first)."""
    flow_run_id = _resolve(run_id)
    try:
        run = queries.get_flow_run(flow_run_id)
        history = queries.state_history(flow_run_id)
        view = task_run_view(flow_run_id, None if show_all else limit)
        if output == "json":
            _inspect_json(run, history, view)
        else:
            _inspect_text(run, history, view)
    except StoreError as exc:
        raise click.ClickException(describe(exc)) from exc


def _inspect_json(run: Any, history: list[Any], view: TaskRunView) -> None:
    """The run as one JSON object; its ``task_runs`` array written as it is read."""
    head = _as_json(run) | {
        "state_history": [_as_json(s) for s in history],
        "task_run_counts": [dataclasses.asdict(c) for c in view.counts],
        "task_runs_total": view.total,
        "task_runs_shown": view.shown,
    }
    text = json.dumps(head, indent=2, sort_keys=True, default=str)
    click.echo(text[: text.rstrip().rfind("}")].rstrip() + ',\n  "task_runs": [')
    first = True
    for task in view.runs():
        item = json.dumps(_as_json(task), sort_keys=True, default=str)
        click.echo(("    " if first else "    ,") + item)
        first = False
    click.echo("  ]\n}")


def _inspect_text(run: Any, history: list[Any], view: TaskRunView) -> None:
    console = _console()
    console.print(Text.assemble(("Flow run ", "bold"), (str(run.id), "bold")))
    _field(console, "flow", run.flow_name)
    _field(console, "name", run.name)
    _field(console, "state", _state(run.state_type, run.state_name))
    if run.state_message:
        _field(console, "message", run.state_message, lines=True)
    _field(console, "start", readable_time(run.start_time))
    _field(console, "duration", readable_duration(run.duration))
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
        states.add_row(readable_time(state.ts), _state(state.type, state.name),
                       Text(safe(state.message or "", lines=True)))
    console.print(states)

    console.print()
    if view.shown == view.total:
        console.print(Text(f"Task runs ({view.total})", style="bold"))
    else:
        console.print(Text(f"Task runs ({view.shown} of {view.total} listed, failures first; "
                           "--limit N or --all for more)", style="bold"))
    if not view.total:
        return
    counts = Table(box=None, pad_edge=False)
    counts.add_column("count", justify="right")
    counts.add_column("state")
    counts.add_column("task")
    for c in view.counts:
        counts.add_row(str(c.count), _state(c.state_type, c.state_name),
                       Text(safe(c.task_key or "-")))
    console.print(counts)

    if view.shown:
        console.print()
        _print_task_runs(console, view)
    if view.failed and view.shown:
        console.print()
        console.print(Text(f"Failures ({view.failed})", style="bold red"))
        for task in view.failures():
            if task.state_message:
                console.print(Text.assemble((f"{safe(task.name)}: ", "bold"),
                                            safe(task.state_message or "", lines=True)))


def _print_task_runs(console: Console, view: TaskRunView) -> None:
    """A table of the listed task runs; with ``--all``, plain lines as they stream."""
    if view.limit is not None:
        table = Table(box=None, pad_edge=False)
        table.add_column("task run")
        table.add_column("state")
        table.add_column("duration", justify="right", no_wrap=True)
        for task in view.runs():
            table.add_row(Text(safe(task.name or "-")), _state(task.state_type, task.state_name),
                          readable_duration(task.duration))
        console.print(table)
        return
    click.echo(f"{'task run':<40} {'state':<12} {'duration':>9}")
    for task in view.runs():
        label = task.state_name or (task.state_type or "-").title()
        click.echo(f"{safe(task.name or '-'):<40} {safe(label):<12} "
                   f"{readable_duration(task.duration):>9}")


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
                (readable_time(record.ts), "dim"),
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
        from fluvial.orchestration.parameters import call_arguments

        args, kwargs = call_arguments(flow_obj.fn, inputs.parameters)  # *args/**kwargs flat
        state = flow_obj(*args, **kwargs, return_state=True)
    report(state)
