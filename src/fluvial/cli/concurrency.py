"""`fluvial concurrency-limit ...`: create, list, inspect, reset and delete tag limits.

Owns the `concurrency_limit` click group (added to the main `fluvial` group by
`fluvial.cli`). Limits are the persisted ones under `FLUVIAL_HOME`; the slot
counts shown and reset are those of this machine (the host slot manager).
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluvial import concurrency as conc
from fluvial.cli._terminal import safe

__all__ = ["concurrency_limit"]


def _console() -> Console:
    return Console(soft_wrap=True)


def _decay(value: float | None) -> str:
    return "-" if not value else f"{value:g}/s"


@click.group(name="concurrency-limit")
def concurrency_limit() -> None:
    """Manage tag-based concurrency limits."""


@concurrency_limit.command()
@click.argument("tag")
@click.argument("limit", type=int)
@click.option("--slot-decay-per-second", type=float, default=None,
              help="Make it a rate limit: held slots drain at this rate.")
def create(tag: str, limit: int, slot_decay_per_second: float | None) -> None:
    """Create or update the limit on TAG to LIMIT concurrent task runs (0 blocks the tag)."""
    try:
        conc.set_limit(tag, limit, slot_decay_per_second=slot_decay_per_second)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(safe(exc)) from exc
    msg = f"Concurrency limit {safe(repr(tag))} set to {limit}"
    if limit == 0:
        msg += " (the tag is blocked: its tasks wait)"
    click.echo(msg + ".")


@concurrency_limit.command(name="ls")
def ls() -> None:
    """List every limit with its slots in use on this machine."""
    table = Table(title="Concurrency limits")
    for col in ("Tag", "Limit", "Active slots", "Decay"):
        table.add_column(col)
    manager = conc.get_slot_manager()
    for rec in conc.list_limits():
        stats = manager.statistics(rec.tag)
        table.add_row(Text(safe(rec.tag)), str(rec.limit), str(stats.active), _decay(rec.slot_decay_per_second))
    _console().print(table)


@concurrency_limit.command()
@click.argument("tag")
def inspect(tag: str) -> None:
    """Show TAG's limit, slots in use, holders and waiters."""
    rec = conc.get_limit(tag)
    if rec is None:
        raise click.ClickException(f"No concurrency limit on tag {safe(repr(tag))}.")
    stats = conc.get_slot_manager().statistics(tag)
    table = Table(title=Text(f"Concurrency limit {safe(repr(tag))}"), show_header=False)
    table.add_column("field")
    table.add_column("value")
    for k, v in (("tag", tag), ("limit", rec.limit), ("active slots", stats.active),
                 ("holders", stats.holders), ("waiters", stats.waiters),
                 ("slot decay", _decay(rec.slot_decay_per_second))):
        table.add_row(k, Text(safe(v)))
    _console().print(table)


@concurrency_limit.command()
@click.argument("tag")
def reset(tag: str) -> None:
    """Free every slot of TAG on this machine."""
    if conc.get_limit(tag) is None:
        raise click.ClickException(f"No concurrency limit on tag {safe(repr(tag))}.")
    conc.reset(tag)
    click.echo(f"Freed every slot of {safe(repr(tag))}.")


@concurrency_limit.command()
@click.argument("tag")
def delete(tag: str) -> None:
    """Remove the limit on TAG."""
    if not conc.delete_limit(tag):
        raise click.ClickException(f"No concurrency limit on tag {safe(repr(tag))}.")
    click.echo(f"Deleted concurrency limit {safe(repr(tag))}.")
