"""What the catalog commands share: a console, tables of user text, ``-o json``.

Everything printed here may have been written by someone else (the record is
shared through PostgreSQL), so text is shown with its control characters
escaped and is never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluvial._readable import readable_time as timestamp
from fluvial.cli._terminal import safe as _safe_text

__all__ = ["output_option", "print_json", "print_table", "safe", "timestamp"]

output_option = click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table",
    show_default=True, help="json: machine-readable output for scripts.")


def safe(value: Any) -> Text:
    """``value`` as plain text with control characters shown escaped (``\\x1b``): the
    one escaping helper, :func:`fluvial.cli._terminal.safe`, in a rich ``Text``."""
    return Text(_safe_text("-" if value is None else value))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else safe(cell) for cell in row))
    Console(highlight=False, soft_wrap=True).print(table)


def print_fields(title: str, fields: Iterable[tuple[str, Any]]) -> None:
    print_table(title, ("field", "value"), fields)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))
