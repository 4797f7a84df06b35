"""``fluvial artifact ls | inspect KEY [--all-versions] | delete KEY``: published reports."""

from __future__ import annotations

import json
from typing import Any

import click

from fluvial.cli._output import output_option, print_json, print_table, safe, timestamp

__all__ = ["artifact"]


def _summary(row: Any) -> str:
    data = row.data
    if row.type == "progress":
        return f"{data:g}%"
    if row.type == "link":
        return data["link"] if not data.get("link_text") else f"{data['link_text']} ({data['link']})"
    if row.type == "table":
        return f"{len(data)} rows" if isinstance(data, list) else f"{len(data)} columns"
    text = str(data).replace("\n", " ")
    return text if len(text) <= 60 else text[:59] + "…"


def _as_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "key": row.key, "type": row.type, "data": row.data,
            "description": row.description, "flow_run_id": row.flow_run_id,
            "task_run_id": row.task_run_id, "created": row.created, "updated": row.updated}


@click.group()
def artifact() -> None:
    """Artifacts published by flow and task runs."""


@artifact.command(name="ls")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--flow-run", "flow_run", default=None, help="Only this flow run's artifacts.")
@output_option
def ls(limit: int, flow_run: str | None, output: str) -> None:
    """List the latest version of each artifact key (and unkeyed artifacts)."""
    from fluvial.store import catalog

    rows = catalog.latest_artifacts(limit=limit, flow_run_id=flow_run)
    if output == "json":
        print_json([_as_json(r) for r in rows])
        return
    print_table("Artifacts", ("ID", "Key", "Type", "Summary", "Flow run", "Updated"),
                ((r.id[:8], r.key, r.type, _summary(r), (r.flow_run_id or "-")[:8],
                  timestamp(r.updated)) for r in rows))


@artifact.command()
@click.argument("key")
@click.option("--all-versions", is_flag=True, help="Every version, newest first.")
@output_option
def inspect(key: str, all_versions: bool, output: str) -> None:
    """Show the latest version of KEY (or every version)."""
    from fluvial.store import catalog

    rows = catalog.artifact_versions(key, limit=None if all_versions else 1)
    if not rows:
        raise click.ClickException(f"No artifact with key {key!r}.")
    if output == "json":
        print_json([_as_json(r) for r in rows] if all_versions else _as_json(rows[0]))
        return
    for row in rows:
        click.echo(safe(f"{row.key}  {row.type}  {timestamp(row.created)}  id {row.id}").plain)
        if row.description:
            click.echo(safe(row.description).plain)
        body = row.data if isinstance(row.data, str) else json.dumps(row.data, indent=2)
        for line in body.splitlines():
            click.echo("  " + safe(line).plain)
        click.echo("")


@artifact.command()
@click.argument("key")
def delete(key: str) -> None:
    """Delete every version of KEY."""
    from fluvial.store import catalog

    n = catalog.delete_artifacts(key)
    if not n:
        raise click.ClickException(f"No artifact with key {key!r}.")
    click.echo(f"Deleted {n} version(s) of artifact {key!r}.")
