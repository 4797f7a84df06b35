"""The catalog as stored: variables, blocks, artifacts and assets.

These are the objects flows read and write by name (``Variable.get``,
``Secret.load``, ``create_markdown_artifact``, ``@materialize``). They are
written synchronously, one short transaction each, never on the task-run hot
path. Values arrive here already encoded (JSON text; secret fields already
encrypted by :mod:`fluvial.blocks`): this module only stores and finds rows.

Concurrent writers of one name are serialised by the store's write lock, and
each write is one statement inside one transaction, so a reader sees one
writer's whole value or the other's, never a mix.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fluvial.store.connection import reading, transaction

__all__ = [
    "ArtifactRow",
    "AssetRow",
    "BlockRow",
    "MaterializationRow",
    "VariableRow",
]


# ---------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class VariableRow:
    name: str
    value: Any
    tags: tuple[str, ...]
    created: float
    updated: float


def _variable(row: Any) -> VariableRow:
    return VariableRow(row[0], json.loads(row[1]), tuple(json.loads(row[2])), row[3], row[4])


_VARIABLE_COLUMNS = "name, value, tags, created, updated"


def put_variable(name: str, value_json: str, tags: Iterable[str], overwrite: bool) -> VariableRow | None:
    """Store a variable; None when it exists and ``overwrite`` is False (nothing written)."""
    now = time.time()
    tags_json = json.dumps(sorted(set(tags)))
    conflict = (
        "DO UPDATE SET value = excluded.value, tags = excluded.tags, updated = excluded.updated"
        if overwrite else "DO NOTHING"
    )
    with reading() as conn, transaction(conn):
        written = conn.execute(
            f"""INSERT INTO variables ({_VARIABLE_COLUMNS}) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (name) {conflict}""",
            (name, value_json, tags_json, now, now),
        ).rowcount
        if not written:
            return None
        row = conn.execute(
            f"SELECT {_VARIABLE_COLUMNS} FROM variables WHERE name = ?", (name,)
        ).fetchone()
    return _variable(row)


def get_variable(name: str) -> VariableRow | None:
    with reading() as conn:
        row = conn.execute(
            f"SELECT {_VARIABLE_COLUMNS} FROM variables WHERE name = ?", (name,)
        ).fetchone()
    return _variable(row) if row else None


def list_variables(limit: int | None = None) -> list[VariableRow]:
    sql = f"SELECT {_VARIABLE_COLUMNS} FROM variables ORDER BY name"
    with reading() as conn:
        rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    return [_variable(row) for row in rows]


def delete_variable(name: str) -> bool:
    with reading() as conn, transaction(conn):
        return conn.execute("DELETE FROM variables WHERE name = ?", (name,)).rowcount > 0


# ---------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class BlockRow:
    id: str
    block_type_slug: str
    name: str
    data: dict[str, Any]
    created: float
    updated: float


_BLOCK_COLUMNS = "id, block_type_slug, name, data, created, updated"


def _block(row: Any) -> BlockRow:
    return BlockRow(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])


def register_block_type(slug: str, class_path: str, schema: dict[str, Any]) -> None:
    """Record (or update) where a block type's class lives, for loading by slug."""
    now = time.time()
    with reading() as conn, transaction(conn):
        conn.execute(
            """INSERT INTO block_types (slug, class_path, schema, created, updated)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (slug) DO UPDATE SET class_path = excluded.class_path,
                   schema = excluded.schema, updated = excluded.updated""",
            (slug, class_path, json.dumps(schema, sort_keys=True), now, now),
        )


def block_type(slug: str) -> tuple[str, dict[str, Any]] | None:
    """The class path and schema registered for ``slug``."""
    with reading() as conn:
        row = conn.execute(
            "SELECT class_path, schema FROM block_types WHERE slug = ?", (slug,)
        ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def list_block_types() -> list[tuple[str, str]]:
    """Every registered block type: (slug, class path)."""
    with reading() as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT slug, class_path FROM block_types ORDER BY slug").fetchall()]


def put_block(slug: str, name: str, data: dict[str, Any], overwrite: bool) -> BlockRow | None:
    """Store a block document; None when it exists and ``overwrite`` is False."""
    now = time.time()
    conflict = (
        "DO UPDATE SET data = excluded.data, updated = excluded.updated"
        if overwrite else "DO NOTHING"
    )
    with reading() as conn, transaction(conn):
        written = conn.execute(
            f"""INSERT INTO block_documents ({_BLOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (block_type_slug, name) {conflict}""",
            (str(uuid.uuid4()), slug, name, json.dumps(data, sort_keys=True), now, now),
        ).rowcount
        if not written:
            return None
        row = conn.execute(
            f"SELECT {_BLOCK_COLUMNS} FROM block_documents WHERE block_type_slug = ? AND name = ?",
            (slug, name),
        ).fetchone()
    return _block(row)


def get_block(slug: str, name: str) -> BlockRow | None:
    with reading() as conn:
        row = conn.execute(
            f"SELECT {_BLOCK_COLUMNS} FROM block_documents WHERE block_type_slug = ? AND name = ?",
            (slug, name),
        ).fetchone()
    return _block(row) if row else None


def list_blocks(slug: str | None = None) -> list[BlockRow]:
    sql = f"SELECT {_BLOCK_COLUMNS} FROM block_documents"
    args: tuple[Any, ...] = ()
    if slug is not None:
        sql += " WHERE block_type_slug = ?"
        args = (slug,)
    with reading() as conn:
        rows = conn.execute(sql + " ORDER BY block_type_slug, name", args).fetchall()
    return [_block(row) for row in rows]


def delete_block(slug: str, name: str) -> bool:
    with reading() as conn, transaction(conn):
        return conn.execute(
            "DELETE FROM block_documents WHERE block_type_slug = ? AND name = ?", (slug, name)
        ).rowcount > 0


# ---------------------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class ArtifactRow:
    id: str
    key: str | None
    type: str
    data: Any
    description: str | None
    flow_run_id: str | None
    task_run_id: str | None
    created: float
    updated: float


_ARTIFACT_COLUMNS = "id, key, type, data, description, flow_run_id, task_run_id, created, updated"


def _artifact(row: Any) -> ArtifactRow:
    return ArtifactRow(row[0], row[1], row[2], json.loads(row[3]), *row[4:])


def add_artifact(key: str | None, type_: str, data: Any, description: str | None,
                 flow_run_id: str | None, task_run_id: str | None) -> ArtifactRow:
    """A new artifact (a new version when ``key`` already has some)."""
    now = time.time()
    row = (str(uuid.uuid4()), key, type_, json.dumps(data), description,
           flow_run_id, task_run_id, now, now)
    with reading() as conn, transaction(conn):
        conn.execute(
            f"INSERT INTO artifacts ({_ARTIFACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row
        )
    return _artifact(row)


def update_artifact_data(artifact_id: str, data: Any) -> bool:
    """Replace an artifact's data in place (progress artifacts); False if it does not exist."""
    with reading() as conn, transaction(conn):
        return conn.execute(
            "UPDATE artifacts SET data = ?, updated = ? WHERE id = ?",
            (json.dumps(data), time.time(), artifact_id),
        ).rowcount > 0


def get_artifact(artifact_id: str) -> ArtifactRow | None:
    with reading() as conn:
        row = conn.execute(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE id = ?", (artifact_id,)
        ).fetchone()
    return _artifact(row) if row else None


def artifact_versions(key: str, limit: int | None = None) -> list[ArtifactRow]:
    """Every version of ``key``, newest first."""
    sql = f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE key = ? ORDER BY created DESC, id"
    with reading() as conn:
        rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else ""), (key,)).fetchall()
    return [_artifact(row) for row in rows]


def latest_artifacts(limit: int = 100, flow_run_id: str | None = None) -> list[ArtifactRow]:
    """The newest version of each key (and every unkeyed artifact), newest first."""
    where = "WHERE flow_run_id = ?1" if flow_run_id else ""
    args: tuple[Any, ...] = (flow_run_id,) if flow_run_id else ()
    sql = f"""SELECT {_ARTIFACT_COLUMNS} FROM artifacts a {where}
              {'AND' if where else 'WHERE'} (a.key IS NULL OR a.created = (
                  SELECT MAX(b.created) FROM artifacts b WHERE b.key = a.key))
              ORDER BY created DESC LIMIT {int(limit)}"""
    with reading() as conn:
        rows = conn.execute(sql, args).fetchall()
    return [_artifact(row) for row in rows]


def delete_artifacts(key: str) -> int:
    """Delete every version of ``key``; the number deleted."""
    with reading() as conn, transaction(conn):
        return int(conn.execute("DELETE FROM artifacts WHERE key = ?", (key,)).rowcount)


def delete_artifact(artifact_id: str) -> bool:
    with reading() as conn, transaction(conn):
        return conn.execute("DELETE FROM artifacts WHERE id = ?", (artifact_id,)).rowcount > 0


# ---------------------------------------------------------------------------- assets


@dataclass(frozen=True)
class AssetRow:
    key: str
    properties: dict[str, Any]
    created: float
    updated: float


@dataclass(frozen=True)
class MaterializationRow:
    asset_key: str
    flow_run_id: str | None
    task_run_id: str | None
    task_name: str | None
    status: str
    metadata: dict[str, Any]
    ts: float


_MATERIALIZATION_COLUMNS = "asset_key, flow_run_id, task_run_id, task_name, status, metadata, ts"


def record_materialization(
    assets: dict[str, dict[str, Any]],
    upstream_keys: Iterable[str],
    flow_run_id: str | None,
    task_run_id: str | None,
    task_name: str | None,
    status: str,
    metadata: dict[str, dict[str, Any]],
) -> None:
    """One task run's materializations, with the lineage edges it implies, in one transaction.

    ``assets`` maps each materialized key to its properties (an empty dict keeps
    what is stored); ``metadata`` maps keys to the metadata added during the run.
    Edges are recorded only for a successful materialization.
    """
    now = time.time()
    upstream = sorted(set(upstream_keys))
    with reading() as conn, transaction(conn):
        for key, properties in assets.items():
            _upsert_asset(conn, key, properties, now)
            conn.execute(
                f"INSERT INTO asset_materializations ({_MATERIALIZATION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, flow_run_id, task_run_id, task_name, status,
                 json.dumps(metadata.get(key, {}), default=str), now),
            )
            if status == "success":
                _add_edges(conn, upstream, [key], now)


def record_lineage(upstream_keys: Iterable[str], downstream_keys: Iterable[str]) -> None:
    """Edges from every upstream key to every downstream key (seen now)."""
    upstream, downstream = sorted(set(upstream_keys)), sorted(set(downstream_keys))
    if not upstream or not downstream:
        return
    with reading() as conn, transaction(conn):
        _add_edges(conn, upstream, downstream, time.time())


def _add_edges(conn: Any, upstream: list[str], downstream: list[str], now: float) -> None:
    for down in downstream:
        _upsert_asset(conn, down, {}, now)
        for up in upstream:
            if up == down:
                continue
            _upsert_asset(conn, up, {}, now)
            conn.execute(
                """INSERT INTO asset_edges (upstream_key, downstream_key, first_seen, last_seen)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (upstream_key, downstream_key)
                   DO UPDATE SET last_seen = excluded.last_seen""",
                (up, down, now, now),
            )


def _upsert_asset(conn: Any, key: str, properties: dict[str, Any], now: float) -> None:
    if properties:
        conn.execute(
            """INSERT INTO assets (key, properties, created, updated) VALUES (?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET properties = excluded.properties,
                   updated = excluded.updated""",
            (key, json.dumps(properties, sort_keys=True), now, now),
        )
    else:
        conn.execute(
            """INSERT INTO assets (key, properties, created, updated) VALUES (?, '{}', ?, ?)
               ON CONFLICT (key) DO NOTHING""",
            (key, now, now),
        )


def get_asset(key: str) -> AssetRow | None:
    with reading() as conn:
        row = conn.execute(
            "SELECT key, properties, created, updated FROM assets WHERE key = ?", (key,)
        ).fetchone()
    return AssetRow(row[0], json.loads(row[1]), row[2], row[3]) if row else None


def list_assets(limit: int = 200) -> list[tuple[AssetRow, MaterializationRow | None]]:
    """Assets by key, each with its latest materialization."""
    with reading() as conn:
        rows = conn.execute(
            f"SELECT key, properties, created, updated FROM assets ORDER BY key LIMIT {int(limit)}"
        ).fetchall()
        out = []
        for row in rows:
            last = conn.execute(
                f"SELECT {_MATERIALIZATION_COLUMNS} FROM asset_materializations "
                "WHERE asset_key = ? ORDER BY ts DESC, seq DESC LIMIT 1", (row[0],)
            ).fetchone()
            out.append((AssetRow(row[0], json.loads(row[1]), row[2], row[3]),
                        _materialization(last) if last else None))
    return out


def _materialization(row: Any) -> MaterializationRow:
    return MaterializationRow(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])


def materializations(key: str, limit: int = 10) -> list[MaterializationRow]:
    """The latest materializations of ``key``, newest first."""
    with reading() as conn:
        rows = conn.execute(
            f"SELECT {_MATERIALIZATION_COLUMNS} FROM asset_materializations WHERE asset_key = ? "
            f"ORDER BY ts DESC, seq DESC LIMIT {int(limit)}", (key,)
        ).fetchall()
    return [_materialization(row) for row in rows]


def lineage(key: str, depth: int = 10) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Edges upstream and downstream of ``key`` (breadth-first, up to ``depth`` hops)."""
    with reading() as conn:
        return (_walk(conn, key, depth, "downstream_key", "upstream_key"),
                _walk(conn, key, depth, "upstream_key", "downstream_key"))


def _walk(conn: Any, key: str, depth: int, near: str, far: str) -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    seen = {key}
    frontier = [key]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for (other,) in conn.execute(
                f"SELECT {far} FROM asset_edges WHERE {near} = ? ORDER BY {far}", (node,)
            ).fetchall():
                edges.append((other, node) if near == "downstream_key" else (node, other))
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        if not nxt:
            break
        frontier = nxt
    return edges
