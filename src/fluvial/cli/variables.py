"""``fluvial variable set | get | ls | inspect | unset``: the record's named JSON values."""

from __future__ import annotations

import json
from typing import Any

import click

from fluvial.cli._output import output_option, print_fields, print_json, print_table, timestamp

__all__ = ["variable"]


def _parse(value: str) -> Any:
    """JSON when it parses as JSON, else the text itself (``set greeting hello``)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@click.group()
def variable() -> None:
    """Manage variables (named JSON values shared by flows)."""


@variable.command(name="set")
@click.argument("name")
@click.argument("value")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace the variable if it exists.")
def set_(name: str, value: str, tags: tuple[str, ...], overwrite: bool) -> None:
    """Set NAME to VALUE (JSON, or plain text)."""
    from fluvial.variables import Variable

    try:
        Variable.set(name, _parse(value), tags=list(tags), overwrite=overwrite)
    except (TypeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Set variable {name!r}.")


@variable.command()
@click.argument("name")
def get(name: str) -> None:
    """Print NAME's value as JSON."""
    from fluvial.store import catalog
    from fluvial.variables import _check_name

    try:
        row = catalog.get_variable(_check_name(name))
    except (TypeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if row is None:
        raise click.ClickException(f"No variable {name!r}.")
    click.echo(json.dumps(row.value))


@variable.command(name="ls")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@output_option
def ls(limit: int, output: str) -> None:
    """List variables."""
    from fluvial.store import catalog

    rows = catalog.list_variables(limit=limit)
    if output == "json":
        print_json([{"name": r.name, "value": r.value, "tags": list(r.tags),
                     "updated": r.updated} for r in rows])
        return
    print_table("Variables", ("Name", "Value", "Tags", "Updated"),
                ((r.name, _short(json.dumps(r.value)), ", ".join(r.tags), timestamp(r.updated))
                 for r in rows))


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@variable.command()
@click.argument("name")
@output_option
def inspect(name: str, output: str) -> None:
    """Show NAME's value, tags and times."""
    from fluvial.store import catalog
    from fluvial.variables import _check_name

    try:
        row = catalog.get_variable(_check_name(name))
    except (TypeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if row is None:
        raise click.ClickException(f"No variable {name!r}.")
    if output == "json":
        print_json({"name": row.name, "value": row.value, "tags": list(row.tags),
                    "created": row.created, "updated": row.updated})
        return
    print_fields(f"Variable {name!r}", (("name", row.name), ("value", json.dumps(row.value)),
                                        ("tags", ", ".join(row.tags)),
                                        ("created", timestamp(row.created)),
                                        ("updated", timestamp(row.updated))))


@variable.command()
@click.argument("name")
def unset(name: str) -> None:
    """Remove NAME."""
    from fluvial.variables import Variable

    try:
        removed = Variable.unset(name)
    except (TypeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not removed:
        raise click.ClickException(f"No variable {name!r}.")
    click.echo(f"Unset variable {name!r}.")
