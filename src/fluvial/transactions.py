"""Transactions, as Prefect 3's: group task runs so that a failure rolls back the side
effects of the ones that completed.

    with transaction(key="nightly-load") as txn:
        txn.set("path", "out.csv")
        write_file(...)          # completed: its on_rollback hooks are now owed
        check_quality(...)       # raises: write_file's on_rollback hooks run

A ``Transaction`` is a context manager kept in a context variable (``get_transaction()``);
transactions nest. Every task run that completes inside one (called, submitted or mapped
from the thread that opened it) becomes a child transaction holding the task's
``on_commit`` / ``on_rollback`` hooks. When the block ends, the task runs submitted in it
are waited for; then, if nothing failed, the transaction commits (children first, in the
order they completed, each child's ``on_commit`` hooks called with that child); if the
block raised, a task run in it failed, or ``rollback()`` was called, it rolls back: every
child that completed is rolled back in reverse order, its ``on_rollback`` hooks called with
it. Hooks run in the driver, the process that opened the transaction.

``commit_mode``: ``LAZY`` (default for a nested transaction: it commits when the outermost
one does), ``EAGER`` (commits when its own block ends), ``OFF`` (never commits by itself;
rolls back at the end unless ``commit()`` was called). A top-level transaction commits when
its block ends. ``isolation_level="SERIALIZABLE"`` holds a lock on the key (a file lock in
the result storage directory, so across processes) for the life of the block. With a
``key``, a value given to ``stage(value)`` is written to the result storage under that key
on commit (``write_on_commit``), and a later transaction with the same key finds itself
already committed (``is_committed()``) unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "get_transaction",
    "transaction",
]

logger = logging.getLogger("fluvial.transactions")


class CommitMode(enum.Enum):
    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class IsolationLevel(enum.Enum):
    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class TransactionState(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


_current: ContextVar[Transaction | None] = ContextVar("fluvial_transaction", default=None)
_NO_DEFAULT: Any = object()


def get_transaction() -> Transaction | None:
    """The innermost open transaction of this thread (or task called in it), or None."""
    return _current.get()


def _enum(kind: type[enum.Enum], value: Any, option: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    try:
        return kind(str(value).upper())
    except ValueError:
        raise ValueError(f"transaction {option} must be one of "
                         f"{[m.value for m in kind]}, got {value!r}") from None


class StoredRecord:
    """What ``Transaction.read()`` returns: the value stored under the key (``.result``)."""

    __slots__ = ("key", "result")

    def __init__(self, key: str, result: Any) -> None:
        self.key = key
        self.result = result

    def __repr__(self) -> str:
        return f"StoredRecord(key={self.key!r})"


class Transaction:
    """One transaction; see the module docstring."""

    def __init__(self, key: str | None = None, *, commit_mode: CommitMode | str | None = None,
                 isolation_level: IsolationLevel | str | None = None, store: Any = None,
                 overwrite: bool = False, write_on_commit: bool | None = None,
                 state: TransactionState = TransactionState.PENDING,
                 on_commit: Sequence[Callable[[Transaction], Any]] = (),
                 on_rollback: Sequence[Callable[[Transaction], Any]] = ()) -> None:
        if key is not None and not isinstance(key, str):
            raise TypeError(f"transaction key must be a string, got {key!r}")
        self.key = key
        self.commit_mode: CommitMode | None = _enum(CommitMode, commit_mode, "commit_mode")
        self.isolation_level: IsolationLevel | None = _enum(IsolationLevel, isolation_level,
                                                             "isolation_level")
        self.store = store
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self.state = state
        self.children: list[Transaction] = []
        self.on_commit_hooks = list(on_commit)
        self.on_rollback_hooks = list(on_rollback)
        self._values: dict[str, Any] = {}
        self._staged: Any = _NO_DEFAULT
        self._parent: Transaction | None = None
        self._token: Token[Transaction | None] | None = None
        self._lock_fd: int | None = None
        self._futures: list[Any] = []  # task runs submitted inside the block
        self._failed: list[str] = []  # names of task runs that did not complete in it
        self._mutex = threading.Lock()

    # -- state -------------------------------------------------------------------
    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def get_parent(self) -> Transaction | None:
        return self._parent

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Transaction):
            return NotImplemented
        return (self.key, self.state, self.commit_mode) == (other.key, other.state,
                                                            other.commit_mode)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"

    # -- values ------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` for this transaction and the ones nested in it."""
        self._values[name] = copy.deepcopy(value)

    def get(self, name: str, default: Any = _NO_DEFAULT) -> Any:
        """A copy of the value set under ``name`` here or in an enclosing transaction."""
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return copy.deepcopy(txn._values[name])
            txn = txn._parent
        if default is _NO_DEFAULT:
            raise ValueError(f"transaction {self.key!r} has no value {name!r} (set it with "
                             f"txn.set({name!r}, ...) or give get() a default)")
        return default

    # -- records -----------------------------------------------------------------
    def _result_store(self) -> Any:
        from fluvial.serialization import ResultStore, default_storage_dir

        store = self.store
        if store is None:
            store = self.store = ResultStore(default_storage_dir())
        elif isinstance(store, (str, os.PathLike)):
            store = self.store = ResultStore(Path(store))
        return store

    def stage(self, value: Any, on_rollback_hooks: Sequence[Callable[..., Any]] = (),
              on_commit_hooks: Sequence[Callable[..., Any]] = ()) -> None:
        """Hold ``value`` (written under the key on commit) and more hooks."""
        if self.is_committed() or self.is_rolled_back():
            raise RuntimeError(f"{self!r} has ended; it cannot stage more")
        self._staged = value
        self.on_rollback_hooks.extend(on_rollback_hooks)
        self.on_commit_hooks.extend(on_commit_hooks)

    def read(self) -> StoredRecord | None:
        """The record stored under the key, or None."""
        if self.key is None:
            return None
        store = self._result_store()
        if not store.exists(self.key):
            return None
        return StoredRecord(self.key, store.read(self.key))

    # -- the block ---------------------------------------------------------------
    def __enter__(self) -> Transaction:
        if not self.is_pending():
            raise RuntimeError(f"{self!r} was already used; make a new transaction")
        parent = _current.get()
        self._parent = parent
        if parent is not None:
            if self.commit_mode is None:
                self.commit_mode = parent.commit_mode or CommitMode.LAZY
            if self.isolation_level is None:
                self.isolation_level = parent.isolation_level
            parent.add_child(self)
        self.commit_mode = self.commit_mode or CommitMode.LAZY
        self.isolation_level = self.isolation_level or IsolationLevel.READ_COMMITTED
        if self.isolation_level is IsolationLevel.SERIALIZABLE:
            self._acquire_lock()
        self.state = TransactionState.ACTIVE
        self._token = _current.set(self)
        if self.key is not None and not self.overwrite and self.read() is not None:
            self.state = TransactionState.COMMITTED  # done before: nothing to do again
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._wait_for_submitted()
            if self.is_committed() or self.is_rolled_back():
                return
            if exc_type is not None or self._failed or any(
                    c.is_rolled_back() for c in self.children):
                if exc_type is None:
                    logger.warning("%r rolls back: task run(s) failed in it: %s", self,
                                   ", ".join(self._failed[:5]) or "a nested transaction")
                self.rollback()
                return
            if self.commit_mode is CommitMode.OFF:
                self.rollback()
            elif self._parent is None or self.commit_mode is CommitMode.EAGER:
                self.commit()
            else:
                self.state = TransactionState.STAGED  # the parent commits it
        finally:
            if self._token is not None:
                _current.reset(self._token)
                self._token = None
            self._release_lock()

    def add_child(self, child: Transaction) -> None:
        with self._mutex:
            self.children.append(child)
        if child._parent is None:
            child._parent = self
        if self.is_rolled_back():  # it ended already: undo what arrives late
            child.rollback()

    def commit(self) -> bool:
        """Commit the children (in order), write the staged value, call the on_commit
        hooks. A failure on the way rolls the whole transaction back; returns success."""
        if self.is_rolled_back():
            return False
        if self.is_committed():
            return True
        try:
            for child in list(self.children):
                if not child.is_rolled_back() and not child.commit():
                    raise RuntimeError(f"{child!r} failed to commit")
            if self._staged is not _NO_DEFAULT and self.key is not None \
                    and self.write_on_commit is not False:
                self._result_store().write(self.key, self._staged)
            for hook in self.on_commit_hooks:
                hook(self)
        except Exception:
            logger.exception("%r could not commit; rolling back", self)
            self.rollback()
            return False
        self.state = TransactionState.COMMITTED
        return True

    def rollback(self) -> bool:
        """Roll back the children that completed (in reverse order), then call this
        transaction's on_rollback hooks. A committed transaction cannot roll back."""
        if self.is_rolled_back() or self.is_committed():
            return False
        self.state = TransactionState.ROLLED_BACK
        ok = True
        for child in reversed(list(self.children)):
            try:
                if not child.is_rolled_back() and not child.rollback():
                    ok = False
            except Exception:
                logger.exception("rolling back %r failed", child)
                ok = False
        for hook in self.on_rollback_hooks:
            try:
                hook(self)
            except Exception:
                logger.exception("on_rollback hook %r of %r raised",
                                 getattr(hook, "__name__", hook), self)
                ok = False
        return ok

    # -- task runs ---------------------------------------------------------------
    def _wait_for_submitted(self) -> None:
        for future in list(self._futures):
            future.wait()

    def _task_run_ended(self, task: Any, task_run: Any, state: Any) -> None:
        """A task run of this transaction ended: a completed one becomes a child holding
        its hooks; one that did not complete makes the transaction roll back."""
        if not state.is_completed():
            with self._mutex:
                self._failed.append(repr(task_run.name))
            return
        on_commit = getattr(task, "on_commit_hooks", ())
        on_rollback = getattr(task, "on_rollback_hooks", ())
        child = Transaction(key=task_run.name, commit_mode=CommitMode.LAZY,
                            on_commit=on_commit, on_rollback=on_rollback,
                            state=TransactionState.STAGED)
        child._parent = self
        child._values = {"task_run_id": str(task_run.id)}
        self.add_child(child)

    # -- locks -------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        if self.key is None:
            raise ValueError("isolation_level SERIALIZABLE needs a transaction key to lock")
        directory = Path(self._result_store().directory) / ".locks"
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"txn-{self.key}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextlib.contextmanager
def transaction(key: str | None = None, *, commit_mode: CommitMode | str | None = None,
                isolation_level: IsolationLevel | str | None = None, store: Any = None,
                overwrite: bool = False, write_on_commit: bool | None = None
                ) -> Iterator[Transaction]:
    """Open a transaction for the block (``with transaction(key=...) as txn:``)."""
    with Transaction(key, commit_mode=commit_mode, isolation_level=isolation_level,
                     store=store, overwrite=overwrite, write_on_commit=write_on_commit) as txn:
        yield txn


def note_called(task: Any, task_run: Any, state: Any) -> None:
    """A task called directly (in this thread) ended: tell the open transaction."""
    txn = _current.get()
    if txn is not None:
        txn._task_run_ended(task, task_run, state)


def note_submitted(futures: Sequence[Any]) -> None:
    """Task runs were submitted in this thread: the open transaction waits for them and
    learns how each ended."""
    txn = _current.get()
    if txn is None:
        return
    txn._futures.extend(futures)
    for future in futures:
        future.add_done_callback(
            lambda f, txn=txn: txn._task_run_ended(f.task_run.task, f.task_run, f._state))
