"""Running a function under a deadline.

Sync functions run in a fresh daemon thread while the caller waits for at most
``timeout`` seconds. When the deadline passes the caller raises ``TaskTimeoutError``
at once, and a ``TaskTimeoutError`` is also raised *inside* the abandoned thread with
``PyThreadState_SetAsyncExc``. That asynchronous exception is delivered at the next
Python bytecode, so pure-Python code stops promptly; code blocked inside a C call
(``time.sleep``, a socket read, a lock wait) keeps running until that call returns,
then stops. Its result, if any, is discarded. Coroutines are cancelled cleanly with
``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import threading
import weakref
from collections.abc import Callable
from typing import Any

from fluvial.exceptions import TaskTimeoutError

__all__ = ["call_with_timeout", "run_coroutine"]

_loops = threading.local()


def run_coroutine(coro: Any, timeout: float | None = None, what: str = "task") -> Any:
    """Run ``coro`` to completion on this thread's own event loop."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
        # closed once the thread is gone (or at exit), not left to the garbage
        # collector, which would close it after its sockets and print an error
        weakref.finalize(threading.current_thread(), loop.close)
    if timeout is not None:
        coro = _with_deadline(coro, timeout, what)
    return loop.run_until_complete(coro)


async def _with_deadline(coro: Any, timeout: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise TaskTimeoutError(f"{what} exceeded its timeout of {timeout} s") from None


def call_with_timeout(
    fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float, what: str
) -> Any:
    """Call ``fn(*args, **kwargs)``, raising ``TaskTimeoutError`` once ``timeout`` passes."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, fn(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            outcome.append((False, exc))

    ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(target,), daemon=True,
                              name=f"fluvial-timeout-{what}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        _raise_in_thread(thread, TaskTimeoutError)
        raise TaskTimeoutError(f"{what} exceeded its timeout of {timeout} s")
    ok, value = outcome[0]
    if ok:
        return value
    raise value


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(exc_type))
