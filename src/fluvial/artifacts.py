"""Artifacts: reports a flow publishes — Markdown, tables, links, images, progress.

The functions of ``prefect.artifacts``. Created inside a flow or task run, an
artifact is linked to that run. A ``key`` (lowercase letters, digits and dashes)
keeps versions: each create under the same key adds a version, and listings show
the latest. Each function returns the new artifact's id.

Markdown is stored as written; wherever it is shown as HTML it goes through
:func:`render_markdown` (markdown-it-py, then sanitised by nh3), so a report
cannot inject script into a page.
"""

from __future__ import annotations

import math
import re
from typing import Any
from uuid import UUID

__all__ = [
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "render_markdown",
    "update_progress_artifact",
]

_KEY = re.compile(r"^[a-z0-9-]+$")


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"invalid artifact key {key!r}: use lowercase letters, digits and dashes"
        )
    return key


def _check_text(name: str, value: Any, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _current_run_ids() -> tuple[str | None, str | None]:
    from fluvial.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        flow_run_id = task_ctx.task_run.flow_run_id
        return (str(flow_run_id) if flow_run_id else None), str(task_ctx.task_run.id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None:
        return str(flow_ctx.flow_run.id), None
    return None, None


def _create(type_: str, data: Any, key: str | None, description: str | None) -> UUID:
    from fluvial.store import catalog

    key = _check_key(key)
    _check_text("description", description, optional=True)
    flow_run_id, task_run_id = _current_run_ids()
    row = catalog.add_artifact(key, type_, data, description, flow_run_id, task_run_id)
    return UUID(row.id)


def create_markdown_artifact(markdown: str, key: str | None = None,
                             description: str | None = None) -> UUID:
    """A Markdown report."""
    return _create("markdown", _check_text("markdown", markdown), key, description)


def create_link_artifact(link: str, link_text: str | None = None, key: str | None = None,
                         description: str | None = None) -> UUID:
    """A link (shown as ``[link_text](link)``)."""
    _check_text("link", link)
    _check_text("link_text", link_text, optional=True)
    return _create("link", {"link": link, "link_text": link_text}, key, description)


def create_image_artifact(image_url: str, key: str | None = None,
                          description: str | None = None) -> UUID:
    """An image, by URL."""
    return _create("image", _check_text("image_url", image_url), key, description)


def create_table_artifact(table: dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]],
                          key: str | None = None, description: str | None = None) -> UUID:
    """A table: a list of row dicts, a dict of columns, or a list of row lists.

    NaN and infinite numbers become None (JSON has no such values).
    """
    return _create("table", _table(table), key, description)


def _table(table: Any) -> Any:
    if isinstance(table, dict):
        lengths = {len(v) for v in table.values() if isinstance(v, list | tuple)}
        if len(lengths) > 1 or not all(isinstance(v, list | tuple) for v in table.values()):
            raise ValueError("a table given as a dict must map column names to equal-length lists")
        return {str(k): [_cell(c) for c in v] for k, v in table.items()}
    if isinstance(table, list | tuple):
        if all(isinstance(row, dict) for row in table):
            return [{str(k): _cell(v) for k, v in row.items()} for row in table]
        if all(isinstance(row, list | tuple) for row in table):
            return [[_cell(c) for c in row] for row in table]
    raise TypeError(
        "table must be a list of dicts, a dict of lists, or a list of lists, "
        f"got {type(table).__name__}"
    )


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _progress(progress: Any) -> float:
    if isinstance(progress, bool) or not isinstance(progress, int | float) or not (
        0 <= progress <= 100
    ):
        raise ValueError(f"progress must be a number from 0 to 100, got {progress!r}")
    return float(progress)


def create_progress_artifact(progress: float, key: str | None = None,
                             description: str | None = None) -> UUID:
    """A progress bar (0–100), updated in place with :func:`update_progress_artifact`."""
    return _create("progress", _progress(progress), key, description)


def update_progress_artifact(artifact_id: UUID | str, progress: float,
                             description: str | None = None) -> UUID:
    """Move a progress artifact to ``progress``; the artifact must exist."""
    from fluvial.store import catalog

    value = _progress(progress)
    artifact_id = str(artifact_id)
    row = catalog.get_artifact(artifact_id)
    if row is None or row.type != "progress":
        raise ValueError(f"no progress artifact with id {artifact_id}")
    catalog.update_artifact_data(artifact_id, value)
    return UUID(artifact_id)


def render_markdown(markdown: str) -> str:
    """Markdown as sanitised HTML (needs ``fluvial[server]``: markdown-it-py and nh3)."""
    try:
        import nh3
        from markdown_it import MarkdownIt
    except ImportError as exc:
        from fluvial.exceptions import MissingDependencyError

        raise MissingDependencyError(
            "rendering Markdown needs markdown-it-py and nh3: pip install 'fluvial[server]'"
        ) from exc
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return nh3.clean(html)
