"""``fluvial task serve path.py:task ... [--limit N]``: a task worker for background runs.

Runs the runs queued with ``task.delay(...)`` for the named tasks until Ctrl-C
(or SIGTERM), which lets the runs in hand finish.
"""

from __future__ import annotations

import logging

import click

__all__ = ["task"]


@click.group()
def task() -> None:
    """Background task runs (Task.delay)."""


@task.command()
@click.argument("entrypoints", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="At most this many task runs at once (threads).")
@click.option("--run-once", is_flag=True, help="Run what is queued now, then exit.")
def serve(entrypoints: tuple[str, ...], limit: int, run_once: bool) -> None:
    """Run queued background runs of the tasks ENTRYPOINTS (path.py:task ...)."""
    from pathlib import Path

    from fluvial.cli._terminal import safe
    from fluvial.deployments._entrypoint import load_task
    from fluvial.exceptions import EntrypointError
    from fluvial.task_worker import TaskWorker

    try:
        tasks = [load_task(e, Path.cwd()) for e in entrypoints]
    except EntrypointError as exc:
        raise click.ClickException(safe(exc)) from None
    handler = logging.StreamHandler()
    log = logging.getLogger("fluvial.worker")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        TaskWorker(*tasks, limit=limit, run_once=run_once).start()
    finally:
        log.removeHandler(handler)
