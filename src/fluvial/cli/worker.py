"""``fluvial worker start``: run the deployments of a work pool.

    fluvial worker start [--pool P] [--limit N] [--run-once] [--max-runs N] [--name NAME]

Polls the run record, schedules (each poll runs one scheduler tick), claims due
runs of its pool and runs each in its own process. With ``FLUVIAL_API_URL`` (and
``FLUVIAL_API_TOKEN``) set it does all that through that ``fluvial server`` instead
(which then schedules), and opens no database. Ctrl-C (or SIGTERM) once:
finish the running flows and stop; twice: hand them back and stop.
"""

from __future__ import annotations

import logging

import click

__all__ = ["worker"]


@click.group()
def worker() -> None:
    """Run deployments' flow runs."""


@worker.command()
@click.option("--pool", default="default", show_default=True, help="The work pool to serve.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many flow runs at once.")
@click.option("--run-once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--max-runs", type=click.IntRange(min=1), default=None,
              help="Stop after starting this many runs (and finishing them).")
@click.option("--name", default=None, help="A name for this worker (default: host-pid).")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.25,
              show_default=True, help="Seconds between polls of the record.")
@click.option("--heartbeat-timeout", type=click.FloatRange(min=1), default=30.0,
              show_default=True,
              help="A worker silent this long is gone: its runs are marked Crashed.")
def start(pool: str, limit: int | None, run_once: bool, max_runs: int | None, name: str | None,
          poll_interval: float, heartbeat_timeout: float) -> None:
    """Start a worker for work pool --pool."""
    from fluvial.exceptions import ApiAuthError
    from fluvial.store import StoreError
    from fluvial.store.remote import api_client
    from fluvial.workers import Worker

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(message)s",
                                           "%H:%M:%S"))
    log = logging.getLogger("fluvial.worker")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        Worker(pool, limit=limit, name=name, run_once=run_once, max_runs=max_runs,
               poll_interval=poll_interval,
               heartbeat_interval=min(5.0, heartbeat_timeout / 3),
               heartbeat_timeout=heartbeat_timeout, api=api_client()).start()
    except (StoreError, ApiAuthError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        log.removeHandler(handler)
