"""The store's schema, as an ordered list of migrations: append yours to :data:`MIGRATIONS`.

``schema_version`` holds one row: how many entries of :data:`MIGRATIONS` have
been applied. :func:`migrate` applies the missing ones in order, inside one
write transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``BEGIN`` plus the
store's advisory lock, and DDL is transactional there too), so concurrent
processes cannot both apply a migration and a failing migration leaves the
database as it was. Append new migrations to the list; never edit a released one.

The same list serves both databases: a migration writes SQLite's column types
and passes each statement through :func:`fluvial.store.dialects.ddl`, which gives
PostgreSQL its equivalents.

:data:`FINAL_STATE_TYPES` and :data:`OPEN_RUN` (the SQL condition "not final
yet") are defined here once, for the schema's index and the SQL that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fluvial.exceptions import StoreError
from fluvial.store.connection import transaction
from fluvial.store.dialects import POSTGRESQL, ddl, dialect_of

__all__ = [
    "FINAL_SQL",
    "FINAL_STATE_TYPES",
    "MIGRATIONS",
    "OPEN_RUN",
    "Migration",
    "current_version",
    "migrate",
]

Migration = Callable[[Any], None]

FINAL_STATE_TYPES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
FINAL_SQL = ", ".join(f"'{t}'" for t in FINAL_STATE_TYPES)
"""The final state types as an SQL list: ``'COMPLETED', 'FAILED', ...``."""
OPEN_RUN = f"(state_type IS NULL OR state_type NOT IN ({FINAL_SQL}))"
"""A run row that is not final yet (the condition of the ``ix_flow_runs_open`` index)."""


def _v1_initial(conn: Any) -> None:
    """Flow runs, task runs, state history, logs and concurrency limits."""
    statements = [
        """CREATE TABLE flow_runs (
            id TEXT PRIMARY KEY,
            name TEXT,
            flow_name TEXT,
            parameters TEXT,
            tags TEXT,
            parent_task_run_id TEXT,
            created REAL,
            pid INTEGER,
            hostname TEXT,
            heartbeat REAL,
            state_type TEXT,
            state_name TEXT,
            state_message TEXT,
            state_ts REAL,
            start_time REAL,
            end_time REAL,
            result_location TEXT
        )""",
        "CREATE INDEX ix_flow_runs_created ON flow_runs (created)",
        "CREATE INDEX ix_flow_runs_flow_name ON flow_runs (flow_name, created)",
        "CREATE INDEX ix_flow_runs_state_type ON flow_runs (state_type, created)",
        # the runs crash recovery looks at: small, so opening the store stays cheap
        f"""CREATE INDEX ix_flow_runs_open ON flow_runs (hostname)
            WHERE state_type IS NULL OR state_type NOT IN ({FINAL_SQL})""",
        """CREATE TABLE task_runs (
            id TEXT PRIMARY KEY,
            flow_run_id TEXT,
            name TEXT,
            task_key TEXT,
            tags TEXT,
            created REAL,
            state_type TEXT,
            state_name TEXT,
            state_message TEXT,
            state_ts REAL,
            start_time REAL,
            end_time REAL,
            result_location TEXT
        )""",
        "CREATE INDEX ix_task_runs_flow_run ON task_runs (flow_run_id, created)",
        """CREATE TABLE state_history (
            seq INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            type TEXT NOT NULL,
            name TEXT,
            message TEXT,
            ts REAL NOT NULL,
            result_location TEXT
        )""",
        "CREATE INDEX ix_state_history_run ON state_history (run_id, ts)",
        """CREATE TABLE logs (
            seq INTEGER PRIMARY KEY,
            run_id TEXT,
            level INTEGER NOT NULL,
            message TEXT NOT NULL,
            ts REAL NOT NULL
        )""",
        "CREATE INDEX ix_logs_run ON logs (run_id, ts)",
        """CREATE TABLE concurrency_limits (
            tag TEXT PRIMARY KEY,
            "limit" INTEGER NOT NULL,
            slot_decay_per_second REAL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
    ]
    dialect = dialect_of(conn)
    if dialect == POSTGRESQL:
        # SQLite's implicit rowid orders task runs created at the same instant
        statements.append(
            "ALTER TABLE task_runs ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY"
        )
    for statement in statements:
        conn.execute(ddl(statement, dialect))


def _v2_deployments(conn: Any) -> None:
    """Deployments, their schedules, scheduler ticks, workers; flow runs a worker can claim.

    A flow run created for a deployment carries its ``deployment_id``, the
    ``work_pool`` whose workers may claim it, the ``scheduled_start_time`` it is
    due at and, when the scheduler made it, an ``idempotency_key`` (unique: one
    run per deployment, schedule and fire time). A worker that claims it writes
    ``worker_id``/``claimed_at``, and the flow's own process its
    ``infrastructure_pid`` and ``code_version``. ``run_input`` holds what
    ``resume_flow_run`` hands a paused run.
    """
    statements = [
        """CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            flow_name TEXT NOT NULL,
            name TEXT NOT NULL,
            entrypoint TEXT,
            parameters TEXT,
            parameter_schema TEXT,
            tags TEXT,
            description TEXT,
            version TEXT,
            work_pool TEXT,
            concurrency_limit INTEGER,
            collision_strategy TEXT,
            paused INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (flow_name, name)
        )""",
        """CREATE TABLE deployment_schedules (
            id TEXT PRIMARY KEY,
            deployment_id TEXT NOT NULL,
            slug TEXT NOT NULL,
            schedule TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            next_fire_time REAL,
            last_fired_time REAL,
            UNIQUE (deployment_id, slug)
        )""",
        "CREATE INDEX ix_deployment_schedules_due ON deployment_schedules (next_fire_time)",
        """CREATE TABLE schedule_ticks (
            seq INTEGER PRIMARY KEY,
            deployment_id TEXT NOT NULL,
            schedule_slug TEXT,
            fire_time REAL,
            decided_at REAL NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT,
            flow_run_id TEXT
        )""",
        "CREATE INDEX ix_schedule_ticks_deployment ON schedule_ticks (deployment_id, decided_at)",
        """CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            name TEXT,
            work_pool TEXT,
            hostname TEXT,
            pid INTEGER,
            heartbeat REAL,
            started REAL
        )""",
        "ALTER TABLE flow_runs ADD COLUMN deployment_id TEXT",
        "ALTER TABLE flow_runs ADD COLUMN idempotency_key TEXT",
        "ALTER TABLE flow_runs ADD COLUMN scheduled_start_time REAL",
        "ALTER TABLE flow_runs ADD COLUMN work_pool TEXT",
        "ALTER TABLE flow_runs ADD COLUMN worker_id TEXT",
        "ALTER TABLE flow_runs ADD COLUMN claimed_at REAL",
        "ALTER TABLE flow_runs ADD COLUMN code_version TEXT",
        "ALTER TABLE flow_runs ADD COLUMN infrastructure_pid INTEGER",
        "ALTER TABLE flow_runs ADD COLUMN run_input TEXT",
        """CREATE UNIQUE INDEX ux_flow_runs_idempotency_key ON flow_runs (idempotency_key)
            WHERE idempotency_key IS NOT NULL""",
        "CREATE INDEX ix_flow_runs_deployment ON flow_runs (deployment_id, created)",
        # what a worker polls for: due runs of its pool
        """CREATE INDEX ix_flow_runs_claimable ON flow_runs (work_pool, scheduled_start_time)
            WHERE state_type = 'SCHEDULED'""",
        # what the reaper looks at: runs held by workers
        f"""CREATE INDEX ix_flow_runs_claimed ON flow_runs (worker_id)
            WHERE worker_id IS NOT NULL AND state_type NOT IN ({FINAL_SQL})""",
    ]
    dialect = dialect_of(conn)
    for statement in statements:
        conn.execute(ddl(statement, dialect))


def _v3_worker_runs(conn: Any) -> None:
    """What workers and background tasks need beyond migration 2.

    ``flow_runs.job_parameters``: the run's parameters as JSON, as the flow
    process receives them (``parameters`` holds the engine's display summary);
    ``flow_runs.attempt``: how many times a worker started the run (a crashed
    run rescheduled for a retry starts again). ``deployments.source``: the
    directory or git URL the entrypoint is relative to; ``deployments.retries``:
    how many times a crashed run is rescheduled. ``task_queue``: background task
    runs (``Task.delay``) waiting for a task worker, with their pickled call
    and, once done, their pickled final state.
    """
    statements = [
        "ALTER TABLE flow_runs ADD COLUMN job_parameters TEXT",
        "ALTER TABLE flow_runs ADD COLUMN attempt INTEGER",
        "ALTER TABLE deployments ADD COLUMN source TEXT",
        "ALTER TABLE deployments ADD COLUMN retries INTEGER",
        """CREATE TABLE task_queue (
            id TEXT PRIMARY KEY,
            task_key TEXT NOT NULL,
            task_name TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            created REAL NOT NULL,
            worker_id TEXT,
            claimed_at REAL,
            result TEXT,
            finished REAL
        )""",
        "CREATE INDEX ix_task_queue_waiting ON task_queue (task_key, created) "
        "WHERE status = 'SCHEDULED'",
    ]
    dialect = dialect_of(conn)
    for statement in statements:
        conn.execute(ddl(statement, dialect))


def _v4_catalog(conn: Any) -> None:
    """The catalog: variables, blocks, artifacts, assets (see :mod:`fluvial.store.catalog`)."""
    statements = [
        """CREATE TABLE variables (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            tags TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
        """CREATE TABLE block_types (
            slug TEXT PRIMARY KEY,
            class_path TEXT NOT NULL,
            schema TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
        """CREATE TABLE block_documents (
            id TEXT PRIMARY KEY,
            block_type_slug TEXT NOT NULL,
            name TEXT NOT NULL,
            data TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (block_type_slug, name)
        )""",
        """CREATE TABLE artifacts (
            id TEXT PRIMARY KEY,
            key TEXT,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            description TEXT,
            flow_run_id TEXT,
            task_run_id TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
        "CREATE INDEX ix_artifacts_key ON artifacts (key, created)",
        "CREATE INDEX ix_artifacts_flow_run ON artifacts (flow_run_id, created)",
        """CREATE TABLE assets (
            key TEXT PRIMARY KEY,
            properties TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
        """CREATE TABLE asset_materializations (
            seq INTEGER PRIMARY KEY,
            asset_key TEXT NOT NULL,
            flow_run_id TEXT,
            task_run_id TEXT,
            task_name TEXT,
            status TEXT NOT NULL,
            metadata TEXT NOT NULL,
            ts REAL NOT NULL
        )""",
        "CREATE INDEX ix_asset_materializations_key ON asset_materializations (asset_key, ts)",
        """CREATE TABLE asset_edges (
            upstream_key TEXT NOT NULL,
            downstream_key TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            PRIMARY KEY (upstream_key, downstream_key)
        )""",
        "CREATE INDEX ix_asset_edges_downstream ON asset_edges (downstream_key)",
    ]
    dialect = dialect_of(conn)
    for statement in statements:
        conn.execute(ddl(statement, dialect))


def _v5_events(conn: Any) -> None:
    """Events, automations, their firings and the evaluator's cursor (:mod:`fluvial.store.events`).

    ``events.seq`` orders events as they were committed (writes hold the store's write
    lock, so a reader that has seen ``seq`` n has seen every event before it).
    ``event_resources`` holds one row per related resource, for lookups and the cleanup.
    A firing's ``key`` is unique: an automation fires once per event or window, whoever
    evaluates it.
    """
    statements = [
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            occurred REAL NOT NULL,
            received REAL NOT NULL,
            resource_id TEXT NOT NULL,
            resource TEXT NOT NULL,
            related TEXT NOT NULL,
            payload TEXT NOT NULL,
            follows TEXT
        )""",
        "CREATE INDEX ix_events_received ON events (received)",
        "CREATE INDEX ix_events_event ON events (event, seq)",
        "CREATE INDEX ix_events_resource ON events (resource_id, seq)",
        """CREATE TABLE event_resources (
            event_seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            resource_id TEXT NOT NULL
        )""",
        "CREATE INDEX ix_event_resources_seq ON event_resources (event_seq)",
        "CREATE INDEX ix_event_resources_id ON event_resources (resource_id, event_seq)",
        """CREATE TABLE automations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            trigger TEXT NOT NULL,
            actions TEXT NOT NULL,
            deployment_id TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
        "CREATE INDEX ix_automations_deployment ON automations (deployment_id)",
        """CREATE TABLE automation_buckets (
            automation_id TEXT NOT NULL,
            bucket TEXT NOT NULL,
            state TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (automation_id, bucket)
        )""",
        """CREATE TABLE automation_firings (
            key TEXT PRIMARY KEY,
            automation_id TEXT NOT NULL,
            fired_at REAL NOT NULL,
            triggering_event TEXT,
            context TEXT NOT NULL,
            status TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at REAL,
            finished_at REAL,
            error TEXT
        )""",
        "CREATE INDEX ix_automation_firings_status ON automation_firings (status, fired_at)",
        "CREATE INDEX ix_automation_firings_automation ON automation_firings (automation_id, fired_at)",
        """CREATE TABLE event_cursors (
            name TEXT PRIMARY KEY,
            events_seq INTEGER NOT NULL,
            states_seq INTEGER NOT NULL,
            updated REAL NOT NULL
        )""",
    ]
    dialect = dialect_of(conn)
    for statement in statements:
        conn.execute(ddl(statement, dialect))


def _v6_received_batches_and_edges(conn: Any) -> None:
    """What remote recording and the run graph need.

    ``received_batches``: the batches a server applied for remote recorders
    (``FLUVIAL_API_URL``), by the recorder's random ``client`` id and the batch's
    ``seq``: a batch resent after a lost reply is recognised and not applied twice
    (see :mod:`fluvial.store.writer.received`). ``task_run_edges``: which upstream
    task run's result (or ``wait_for``) fed which task run, for the run page's graph.
    """
    statements = [
        """CREATE TABLE received_batches (
            client TEXT NOT NULL,
            seq INTEGER NOT NULL,
            received REAL NOT NULL,
            PRIMARY KEY (client, seq)
        )""",
        "CREATE INDEX ix_received_batches_received ON received_batches (received)",
        """CREATE TABLE task_run_edges (
            flow_run_id TEXT,
            upstream_id TEXT NOT NULL,
            downstream_id TEXT NOT NULL,
            PRIMARY KEY (downstream_id, upstream_id)
        )""",
        "CREATE INDEX ix_task_run_edges_flow_run ON task_run_edges (flow_run_id)",
    ]
    dialect = dialect_of(conn)
    for statement in statements:
        conn.execute(ddl(statement, dialect))


MIGRATIONS: list[Migration] = [
    _v1_initial, _v2_deployments, _v3_worker_runs, _v4_catalog, _v5_events,
    _v6_received_batches_and_edges,
]


def _has_version_table(conn: Any) -> bool:
    if dialect_of(conn) == POSTGRESQL:  # in the first schema of the search path
        return conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is not None
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    return row is not None


def current_version(conn: Any) -> int:
    """The number of migrations applied to ``conn``'s database (0 when new)."""
    if not _has_version_table(conn):
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: Any, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the migrations ``conn`` lacks, in order, in one transaction.

    Returns the schema version reached. Idempotent: a second call applies nothing.
    ``conn`` must be in autocommit mode (SQLite: ``isolation_level=None``).
    """
    if current_version(conn) == len(migrations):
        return len(migrations)
    with transaction(conn):
        conn.execute(
            ddl(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                dialect_of(conn),
            )
        )
        version = current_version(conn)  # again, now that we hold the write lock
        if version > len(migrations):
            raise StoreError(
                f"the store's schema is version {version} but this fluvial knows only "
                f"{len(migrations)}; upgrade fluvial or point FLUVIAL_HOME elsewhere"
            )
        for migration in migrations[version:]:
            migration(conn)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(migrations),))
    return len(migrations)
