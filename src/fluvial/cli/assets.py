"""``fluvial asset ls | inspect KEY``: assets, their last materializations, lineage up and down."""

from __future__ import annotations

import click

from fluvial.cli._output import output_option, print_fields, print_json, print_table, timestamp

__all__ = ["asset"]


@click.group()
def asset() -> None:
    """Data assets materialized by flows."""


@asset.command(name="ls")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@output_option
def ls(limit: int, output: str) -> None:
    """List assets with their latest materialization."""
    from fluvial.store import catalog

    rows = catalog.list_assets(limit=limit)
    if output == "json":
        print_json([{"key": a.key, "properties": a.properties,
                     "last_materialization": None if m is None else {
                         "status": m.status, "ts": m.ts, "flow_run_id": m.flow_run_id,
                         "task": m.task_name}} for a, m in rows])
        return
    print_table("Assets", ("Key", "Name", "Last materialized", "Status", "By task"),
                ((a.key, a.properties.get("name"), timestamp(m.ts) if m else "-",
                  m.status if m else "-", m.task_name if m else "-") for a, m in rows))


@asset.command()
@click.argument("key")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many materializations to show.")
@output_option
def inspect(key: str, limit: int, output: str) -> None:
    """Show KEY's properties, latest materializations and lineage."""
    from fluvial.store import catalog

    row = catalog.get_asset(key)
    if row is None:
        raise click.ClickException(f"No asset {key!r}.")
    mats = catalog.materializations(key, limit=limit)
    upstream, downstream = catalog.lineage(key)
    if output == "json":
        print_json({"key": key, "properties": row.properties,
                    "materializations": [m.__dict__ for m in mats],
                    "upstream": upstream, "downstream": downstream})
        return
    print_fields(f"Asset {key}", [("key", key), *row.properties.items()])
    print_table("Materializations", ("Time", "Status", "Task", "Flow run", "Metadata"),
                ((timestamp(m.ts), m.status, m.task_name, (m.flow_run_id or "-")[:8],
                  ", ".join(f"{k}={v}" for k, v in m.metadata.items())) for m in mats))
    print_table("Lineage upstream", ("From", "To"), upstream)
    print_table("Lineage downstream", ("From", "To"), downstream)
