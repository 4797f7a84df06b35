"""State hooks: calling them (each once, in order; a hook that raises is logged and the
run's state is left as it was), and which hooks a final state calls.

Hooks are called as ``hook(task_or_flow, run, state)``, as in Prefect; a
``functools.partial(fn, **extra)`` hook gets its extra keyword arguments too. ``state``
is the very object the run ends in (what ``return_state=True`` gives the caller).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fluvial.states import State, StateType

logger = logging.getLogger("fluvial.hooks")

__all__ = ["call_hooks", "final_hooks"]

_FINAL_HOOKS = {
    StateType.COMPLETED: "on_completion_hooks",
    StateType.FAILED: "on_failure_hooks",
    StateType.CRASHED: "on_crashed_hooks",
    StateType.CANCELLED: "on_cancellation_hooks",
}


def final_hooks(owner: Any, state: State) -> Sequence[Callable[..., Any]]:
    """The hooks of ``owner`` (a task or a flow) for its final ``state``: completion,
    failure, crash or cancellation. A task has no crash hooks: a crashed task run calls
    its failure hooks."""
    name = _FINAL_HOOKS.get(state.type)
    if name is None:
        return ()
    hooks = getattr(owner, name, None)
    if hooks is None and state.type is StateType.CRASHED:
        hooks = getattr(owner, "on_failure_hooks", None)
    return hooks or ()


def call_hooks(hooks: Sequence[Callable[..., Any]], owner: Any, run: Any, state: State) -> None:
    for hook in hooks:
        try:
            hook(owner, run, state)
        except Exception:
            logger.exception(
                "Hook %r of %r raised; the run's state stays %r",
                getattr(hook, "__name__", hook), getattr(owner, "name", owner), state,
            )
