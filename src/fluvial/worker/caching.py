"""Cache lookups and result persistence for one task run (called by the task engine).

The key comes from the task's cache policy. A record is a file in the task's result
storage (default ``$FLUVIAL_HOME/storage``) named by the key, written atomically, with
its expiry in the header. A hit ends the run ``Cached`` with the stored value; a
missing, expired or corrupted record is a miss (a corrupted one is logged, naming the
file) and the task computes again, overwriting it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluvial import states as st
from fluvial._files import private_dir
from fluvial.exceptions import SerializationFailure
from fluvial.runs import TaskRun, bind_parameters
from fluvial.states import State

__all__ = [
    "CacheSession",
    "compute_key",
    "out_of_memory",
    "persist",
    "persist_key",
    "persist_key_for",
    "read",
    "session",
    "storage_for",
]

logger = logging.getLogger("fluvial.caching")

_stores: dict[str, Any] = {}


def storage_for(task: Any) -> Any:
    """Where a task's results go: its ``result_storage`` — a directory, a filesystem block,
    or a block's ``"local-file-system/name"`` slug — or the default directory. A cache
    policy configured with ``key_storage`` keeps its records there instead."""
    storage = getattr(getattr(task, "key_policy", None), "key_storage", None) \
        or task.result_storage
    if storage is None or isinstance(storage, str | Path):
        cache_key = str(storage) if storage is not None else ""
    else:  # a block object: one store per object
        cache_key = f"block:{id(storage)}"
    result_store = _stores.get(cache_key)
    if result_store is None:
        result_store = _stores[cache_key] = _open_storage(storage)
    return result_store


def _open_storage(storage: Any) -> Any:
    from fluvial.filesystems import LocalFileSystem, WritableFileSystem, filesystem_block
    from fluvial.serialization import FileSystemResultStore, ResultStore, default_storage_dir

    if storage is None:
        return ResultStore(default_storage_dir())
    if isinstance(storage, str):
        storage = filesystem_block(storage) or storage
    if isinstance(storage, str | Path):
        return ResultStore(Path(storage))
    if isinstance(storage, LocalFileSystem):
        return ResultStore(storage.base_directory())
    if isinstance(storage, WritableFileSystem):
        return FileSystemResultStore(storage)
    raise TypeError(
        "result_storage must be a directory, a filesystem block or its "
        f"'block-type/name' slug, got {type(storage).__name__}"
    )


def compute_key(task: Any, task_run: TaskRun, args: tuple, kwargs: dict) -> str | None:
    """The run's cache key (None: do not cache this call).

    Raises ``TypeError`` naming the task and the parameter when an input cannot be hashed,
    and ``ValueError`` naming the task when the policy fails or gives a key that is not a
    valid record name (empty, a path, a leading dot, too long): the engine turns both into
    the run's ``Failed`` state, before anything is locked or written.
    """
    from fluvial.context import TaskRunContext, _flow_run
    from fluvial.serialization.storage import validate_key

    inputs = bind_parameters(task.fn, args, kwargs)
    flow_parameters = task_run.flow_parameters
    if flow_parameters is None:
        flow_ctx = _flow_run.get()
        flow_parameters = dict(flow_ctx.flow_run.parameters) if flow_ctx is not None else {}
    try:
        key = task.key_policy.compute_key(task_ctx=TaskRunContext(task, task_run),
                                          inputs=inputs, flow_parameters=flow_parameters)
    except TypeError as exc:
        raise TypeError(f"task {task.name!r}: cannot compute a cache key: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"task {task.name!r}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"task {task.name!r}: its cache policy failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    if key is None:
        return None
    try:
        return validate_key(key)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"task {task.name!r}: cache key {str(key)[:80]!r} cannot name a "
                         f"result record: {exc}") from None


def out_of_memory(task: Any, key: str, state: State) -> State:
    """With ``cache_result_in_memory=False``: a completed, persisted state whose data is a
    reference to the stored record, read when someone asks for the result."""
    if task.cache_result_in_memory or not state.is_completed() or state.data is None:
        return state
    return state.copy(data=st.StoredResult(str(storage_for(task).directory), key))


class CacheSession:
    """One task run's view of the cache: ``hit`` (a ``Cached`` state or None) and ``save``."""

    __slots__ = ("task", "task_run", "key", "hit")

    def __init__(self, task: Any, task_run: TaskRun, key: str | None) -> None:
        self.task = task
        self.task_run = task_run
        self.key = key
        self.hit: State | None = None

    def save(self, state: State) -> State:
        """Store a completed state's result; the state to end with (Failed if it can't be)."""
        if state.is_completed():
            return persist(self.task, self.task_run, self.key, state)
        return state


@contextlib.contextmanager
def session(task: Any, task_run: TaskRun, key: str | None) -> Iterator[CacheSession]:
    """Look the run up in the cache; with SERIALIZABLE isolation hold the key's lock
    until the block ends, so concurrent runs with the same key compute once."""
    cache = CacheSession(task, task_run, key)
    if key is None:
        yield cache
        return
    if task.key_policy.isolation_level == "SERIALIZABLE":
        with _key_lock(task, key):
            if not task.refresh_cache:
                cache.hit = read(task, key)
            yield cache
        return
    if not task.refresh_cache:
        cache.hit = read(task, key)
    yield cache


def persist_key_for(task: Any, task_run: TaskRun, args: tuple, kwargs: dict) -> str:
    """Where a persisted result (without a cache key) is stored: a key a retry of the
    flow run can find again, or the run id when the inputs cannot be hashed."""
    try:
        return persist_key(task_run, bind_parameters(task.fn, args, kwargs))
    except TypeError:
        return task_run.id.hex


def read(task: Any, key: str) -> State | None:
    """The ``Cached`` state of a stored record; None if missing, expired or unreadable."""
    from fluvial.serialization import ResultRecordError

    result_store = storage_for(task)
    if not result_store.exists(key):
        return None
    try:
        if result_store.read_meta(key).is_expired():
            return None
        value = result_store.read(key)
    except ResultRecordError as exc:
        logger.warning("Cache record unusable, computing again: %s", exc)
        return None
    return st.Cached(value, message=f"Cache hit for key {key[:12]}")


def persist(task: Any, task_run: TaskRun, key: str | None, state: State) -> State:
    """Write a completed state's result (under its cache key, else its run id).

    Returns the state to end with: ``state``, or a ``Failed`` one naming the task and
    its return value when the result cannot be serialized or written.
    """
    if key is None and not task.persist_result:
        return state
    expires = None
    if task.cache_expiration is not None:
        expires = datetime.now(UTC) + task.cache_expiration
    try:
        storage_for(task).write(key if key is not None else task_run.id.hex, state.data,
                                task.result_serializer, expires_at=expires)
    except Exception as exc:
        error = SerializationFailure(
            f"task {task.name!r}: its return value ({type(state.data).__name__}) could not be "
            f"persisted with serializer {task.result_serializer or 'msgpack/cloudpickle'!r}: "
            f"{exc}")
        error.__cause__ = exc
        return st.Failed(error)
    return state


def persist_key(task_run: TaskRun, inputs: dict[str, Any]) -> str:
    """The storage key of a persisted result: lineage, task identity and inputs."""
    from fluvial.serialization import hash_inputs

    lineage = task_run.lineage_id or task_run.flow_run_id or task_run.id
    digest = hashlib.sha256(f"{lineage}|{task_run.task.task_key}|".encode())
    digest.update(hash_inputs(inputs).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _key_lock(task: Any, key: str) -> Iterator[None]:
    # Named by a digest of the (already validated) key: always one short name inside .locks.
    directory = private_dir(Path(storage_for(task).directory) / ".locks")
    name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    fd = os.open(directory / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
