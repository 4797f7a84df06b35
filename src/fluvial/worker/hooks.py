"""Calling state hooks: each hook once, in order; a hook that raises is logged and the
run's state is left as it was."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fluvial.states import State

logger = logging.getLogger("fluvial.hooks")

__all__ = ["call_hooks"]


def call_hooks(hooks: Sequence[Callable[..., Any]], owner: Any, run: Any, state: State) -> None:
    for hook in hooks:
        try:
            hook(owner, run, state)
        except Exception:
            logger.exception(
                "Hook %r of %r raised; the run's state stays %r",
                getattr(hook, "__name__", hook), getattr(owner, "name", owner), state,
            )
