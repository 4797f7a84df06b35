"""``fluvial block ls | inspect | delete | register | type ls``: saved blocks and their types.

Secret fields are shown as ``********``: the commands read what is stored and
never decrypt it.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from fluvial.cli._output import output_option, print_fields, print_json, print_table, timestamp

__all__ = ["block"]

MASK = "********"


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in data.items():
        if isinstance(value, dict) and "$fluvial_encrypted" in value:
            out[field] = MASK
        elif isinstance(value, dict) and "$block_type_slug" in value:
            out[field] = {"block_type": value["$block_type_slug"], **_masked(value["data"])}
        else:
            out[field] = value
    return out


def _split(ref: str) -> tuple[str, str]:
    slug, sep, name = ref.partition("/")
    if not sep or not slug or not name:
        raise click.BadParameter(f"expected BLOCK_TYPE_SLUG/NAME, got {ref!r}")
    return slug, name


@click.group()
def block() -> None:
    """Manage blocks (saved configuration and credentials)."""


@block.command(name="ls")
@click.option("--type", "slug", default=None, help="Only blocks of this type slug.")
@output_option
def ls(slug: str | None, output: str) -> None:
    """List saved blocks."""
    from fluvial.store import catalog

    rows = catalog.list_blocks(slug)
    if output == "json":
        print_json([{"id": r.id, "block_type": r.block_type_slug, "name": r.name,
                     "updated": r.updated} for r in rows])
        return
    print_table("Blocks", ("ID", "Type", "Name", "Slug", "Updated"),
                ((r.id[:8], r.block_type_slug, r.name, f"{r.block_type_slug}/{r.name}",
                  timestamp(r.updated)) for r in rows))


@block.command()
@click.argument("ref")
@output_option
def inspect(ref: str, output: str) -> None:
    """Show the block REF (SLUG/NAME); secret fields are masked."""
    from fluvial.store import catalog

    slug, name = _split(ref)
    row = catalog.get_block(slug, name)
    if row is None:
        raise click.ClickException(f"No block {slug}/{name}.")
    data = _masked(row.data)
    if output == "json":
        print_json({"id": row.id, "block_type": slug, "name": name, "data": data,
                    "created": row.created, "updated": row.updated})
        return
    print_fields(f"Block {slug}/{name}", [("id", row.id), ("type", slug), ("name", name),
                                         *((f"  {k}", json.dumps(v) if not isinstance(v, str)
                                            else v) for k, v in data.items()),
                                         ("updated", timestamp(row.updated))])


@block.command()
@click.argument("ref")
def delete(ref: str) -> None:
    """Delete the block REF (SLUG/NAME)."""
    from fluvial.store import catalog

    slug, name = _split(ref)
    if not catalog.delete_block(slug, name):
        raise click.ClickException(f"No block {slug}/{name}.")
    click.echo(f"Deleted block {slug}/{name}.")


@block.command()
@click.option("-m", "--module", "module", required=True,
              help="Import this module and register every block type it defines.")
def register(module: str) -> None:
    """Register the block types a module defines, so any process can load them by slug."""
    from fluvial.blocks.core import Block

    sys.path.insert(0, ".")
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise click.ClickException(f"cannot import module {module!r}: {exc}") from None
    finally:
        sys.path.remove(".")
    found = [obj for obj in vars(mod).values()
             if isinstance(obj, type) and issubclass(obj, Block) and obj is not Block
             and obj.__module__ == mod.__name__]
    if not found:
        raise click.ClickException(f"module {module!r} defines no Block subclass")
    for klass in found:
        klass.register_type_and_schema()
        click.echo(f"Registered block type {klass.get_block_type_slug()!r} ({klass.__name__}).")


@block.group(name="type")
def type_() -> None:
    """Block types."""


@type_.command(name="ls")
@output_option
def type_ls(output: str) -> None:
    """List block types: the built-ins and those registered in the record."""
    from fluvial.blocks.core import registered_types
    from fluvial.store import catalog

    types = {slug: k.class_path() for slug, k in registered_types().items()}
    types.update(dict(catalog.list_block_types()))
    if output == "json":
        print_json([{"slug": s, "class": c} for s, c in sorted(types.items())])
        return
    print_table("Block types", ("Slug", "Class"), sorted(types.items()))
