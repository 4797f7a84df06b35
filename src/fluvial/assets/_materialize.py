"""``@materialize``: a task whose runs materialize assets, recorded with their lineage.

Where the task runs, a wrapper around its function collects the metadata added
with :func:`add_asset_metadata` and records one materialization per asset
(status ``success`` or ``failed``) when the function returns or raises, with
edges from the ``asset_deps``. In the driver, :class:`MaterializingTask` adds the
edges it can see there: from the assets of the materializing tasks whose
futures (``submit``/``map``) or results (direct calls in the same flow) it is
given. Recording is synchronous but happens once per materializing run, never on
the path of ordinary tasks.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fluvial.assets._asset import Asset, asset_key
from fluvial.exceptions import MissingContextError
from fluvial.tasks import Task

__all__ = ["MaterializingTask", "add_asset_metadata", "materialize"]

logger = logging.getLogger("fluvial.assets")


@dataclass
class _Collector:
    task_name: str
    keys: tuple[str, ...]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


_collector: ContextVar[_Collector | None] = ContextVar("fluvial_asset_collector", default=None)


def add_asset_metadata(asset: Asset | str, metadata: dict[str, Any]) -> None:
    """Attach ``metadata`` (JSON) to ``asset``'s materialization by the current task run."""
    collector = _collector.get()
    if collector is None:
        raise MissingContextError(
            "add_asset_metadata() must be called inside a run of a @materialize task"
        )
    key = asset.key if isinstance(asset, Asset) else asset_key(asset)
    if key not in collector.keys:
        raise ValueError(
            f"task {collector.task_name!r} does not materialize asset {key!r} "
            f"(it materializes {', '.join(collector.keys)})"
        )
    if not isinstance(metadata, dict):
        raise TypeError(f"asset metadata must be a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata for asset {key!r} must be JSON: {exc}") from None
    collector.metadata.setdefault(key, {}).update(metadata)


def _asset(value: Asset | str) -> Asset:
    if isinstance(value, Asset):
        return value
    if isinstance(value, str):
        return Asset(key=value)
    raise TypeError(f"assets must be Asset objects or key strings, got {type(value).__name__}")


def _record(assets: tuple[Asset, ...], deps: tuple[str, ...], by: str | None,
            status: str, collector: _Collector) -> None:
    from fluvial.context import TaskRunContext
    from fluvial.store import store_enabled

    if not store_enabled():
        return
    ctx = TaskRunContext.get()
    task_run = ctx.task_run if ctx is not None else None
    props = {}
    for asset in assets:
        p = asset.properties.model_dump(exclude_none=True) if asset.properties else {}
        props[asset.key] = p
    metadata = {k: dict(v) for k, v in collector.metadata.items()}
    if by:
        for asset in assets:
            metadata.setdefault(asset.key, {}).setdefault("materialized_by", by)
    try:
        from fluvial.store import catalog

        catalog.record_materialization(
            props, deps,
            str(task_run.flow_run_id) if task_run and task_run.flow_run_id else None,
            str(task_run.id) if task_run else None,
            collector.task_name, status, metadata,
        )
    except Exception as exc:  # the task's own outcome stands; say what was not recorded
        logger.warning("Could not record the materialization of %s: %s",
                       ", ".join(a.key for a in assets), exc)


def _begin(task_name: str, keys: tuple[str, ...]) -> tuple[_Collector, Any]:
    collector = _Collector(task_name, keys)
    return collector, _collector.set(collector)


def _finish(started: tuple[_Collector, Any], assets: tuple[Asset, ...], deps: tuple[str, ...],
            by: str | None, status: str) -> None:
    collector, token = started
    _collector.reset(token)
    _record(assets, deps, by, status, collector)


def _wrap(fn: Callable[..., Any], task_name: str, assets: tuple[Asset, ...],
          deps: tuple[str, ...], by: str | None) -> Callable[..., Any]:
    # The wrappers refer only to importable functions, so cloudpickle can ship them.
    keys = tuple(a.key for a in assets)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            started = _begin(task_name, keys)
            try:
                result = await fn(*args, **kwargs)
            except BaseException:
                _finish(started, assets, deps, by, "failed")
                raise
            _finish(started, assets, deps, by, "success")
            return result

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        started = _begin(task_name, keys)
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            _finish(started, assets, deps, by, "failed")
            raise
        _finish(started, assets, deps, by, "success")
        return result

    return run


# results of materializing tasks called directly in this process, by identity; the
# values are held so their ids cannot be reused while they are looked up
_produced: OrderedDict[int, tuple[Any, tuple[str, ...]]] = OrderedDict()
_produced_lock = threading.Lock()
_PRODUCED_MAX = 1024


def _remember(value: Any, keys: tuple[str, ...]) -> None:
    if value is None or isinstance(value, bool | int | float | str):
        return  # interned or cached values: identity says nothing
    with _produced_lock:
        _produced[id(value)] = (value, keys)
        _produced.move_to_end(id(value))
        while len(_produced) > _PRODUCED_MAX:
            _produced.popitem(last=False)


def _upstream_keys(values: Iterable[Any]) -> set[str]:
    from fluvial.futures import Future

    found: set[str] = set()

    def visit(value: Any, depth: int) -> None:
        if isinstance(value, Future):
            task = value.task_run.task
            if isinstance(task, MaterializingTask):
                found.update(task.asset_keys)
            return
        with _produced_lock:
            hit = _produced.get(id(value))
        if hit is not None and hit[0] is value:
            found.update(hit[1])
            return
        if depth < 2 and isinstance(value, list | tuple | set | frozenset):
            for item in value:
                visit(item, depth + 1)
        elif depth < 2 and isinstance(value, dict):
            for item in value.values():
                visit(item, depth + 1)

    for value in values:
        visit(value, 0)
    return found


class MaterializingTask(Task):  # type: ignore[type-arg]
    """A task whose runs materialize ``assets`` (made by :func:`materialize`)."""

    def __init__(self, fn: Callable[..., Any], assets: Iterable[Asset | str],
                 by: str | None = None, asset_deps: Iterable[Asset | str] | None = None,
                 **task_options: Any) -> None:
        self.assets = tuple(_asset(a) for a in assets)
        if not self.assets:
            raise ValueError("@materialize needs at least one asset")
        if by is not None and not isinstance(by, str):
            raise TypeError(f"by must be a string naming the tool, got {type(by).__name__}")
        self.by = by
        self.asset_deps = tuple(_asset(a) for a in (asset_deps or ()))
        self.asset_keys = tuple(a.key for a in self.assets)
        self._original_fn = fn
        name = str(task_options.get("name") or getattr(fn, "__name__", "materialize"))
        wrapped = _wrap(fn, name, self.assets, tuple(a.key for a in self.asset_deps), by)
        super().__init__(wrapped, **task_options)

    def with_options(self, **options: Any) -> MaterializingTask:
        unknown = set(options) - set(self._options) - {"assets", "by", "asset_deps"}
        if unknown:
            raise TypeError(f"task {self.name!r}: unknown option(s) {sorted(unknown)}")
        merged = {**self._options, **options}
        if "name" not in options and merged["name"] is None:
            merged["name"] = self.name
        assets = merged.pop("assets", self.assets)
        by = merged.pop("by", self.by)
        deps = merged.pop("asset_deps", self.asset_deps)
        return MaterializingTask(self._original_fn, assets, by=by, asset_deps=deps, **merged)

    def _driver_lineage(self, args: tuple, kwargs: dict) -> set[str]:
        return _upstream_keys([*args, *kwargs.values()]) - set(self.asset_keys)

    def _record_edges_when_done(self, future: Any, upstream: set[str]) -> None:
        from fluvial.store import catalog, store_enabled

        def done(f: Any) -> None:
            if store_enabled() and f.state.is_completed():
                try:
                    catalog.record_lineage(upstream, self.asset_keys)
                except Exception as exc:
                    logger.warning("Could not record the lineage of %s: %s",
                                   ", ".join(self.asset_keys), exc)

        future.add_done_callback(done)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        upstream = self._driver_lineage(args, kwargs)
        result = super().__call__(*args, **kwargs)
        if kwargs.get("return_state"):
            return result
        if upstream:
            from fluvial.store import catalog, store_enabled

            if store_enabled():
                catalog.record_lineage(upstream, self.asset_keys)
        _remember(result, self.asset_keys)
        return result

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        upstream = self._driver_lineage(args, kwargs)
        future = super().submit(*args, **kwargs)
        if upstream and not kwargs.get("return_state"):
            self._record_edges_when_done(future, upstream)
        return future

    def map(self, *args: Any, **kwargs: Any) -> Any:
        upstream = self._driver_lineage(args, kwargs)
        futures = super().map(*args, **kwargs)
        if upstream and not kwargs.get("return_state"):
            for future in futures:
                self._record_edges_when_done(future, upstream)
        return futures


def materialize(*assets: Asset | str, by: str | None = None,
                asset_deps: Iterable[Asset | str] | None = None,
                **task_options: Any) -> Callable[[Callable[..., Any]], MaterializingTask]:
    """Make a function a task that materializes ``assets`` (any ``@task`` option applies)."""
    checked = tuple(_asset(a) for a in assets)
    if not checked:
        raise ValueError("@materialize needs at least one asset")

    def decorate(fn: Callable[..., Any]) -> MaterializingTask:
        return MaterializingTask(fn, checked, by=by, asset_deps=asset_deps, **task_options)

    return decorate
