"""Checks of task and flow options, made when the options are given.

``@task(...)``, ``@flow(...)`` and ``with_options(...)`` call these, so a bad option is
a ``TypeError`` (wrong kind) or ``ValueError`` (wrong value) naming the task or flow and
the option at decoration, never a surprise after the work has run: numbers are finite
(``timeout_seconds=inf`` or ``nan`` is refused), serializers are registered names,
callables are callable, flags are booleans, tags are strings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "as_hooks",
    "as_tags",
    "check_callable",
    "check_flag",
    "check_max_in_flight",
    "check_number",
    "check_result_serializer",
    "check_result_storage",
    "check_text",
]


def check_number(owner: str, option: str, value: Any, *, allow_none: bool = True,
                 integer: bool = False, positive: bool = False) -> None:
    """A finite number >= 0 (> 0 with ``positive``; an ``int`` with ``integer``)."""
    if value is None and allow_none:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{owner}: {option} must be {'an int' if integer else 'a number'}, "
                        f"got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {option} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{owner}: {option} must be > 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{owner}: {option} must be >= 0, got {value!r}")


def check_callable(owner: str, option: str, value: Any) -> None:
    """None or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{owner}: {option} must be callable, got {value!r}")


def check_flag(owner: str, option: str, value: Any, *, allow_none: bool = True) -> None:
    """``True``/``False`` (or None when allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {option} must be True or False, got {value!r}")


def check_text(owner: str, option: str, value: Any) -> None:
    """None or a string."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{owner}: {option} must be a string, got {value!r}")


def check_result_serializer(owner: str, value: Any) -> None:
    """None, or the name of a registered serializer (``compressed/<name>`` too)."""
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{owner}: result_serializer must be a serializer name, got {value!r}")
    from fluvial.serialization import serializer_names

    base = value.removeprefix("compressed/")
    known = serializer_names()
    if base not in known:
        raise ValueError(
            f"{owner}: result_serializer {value!r} is not a registered serializer; known: "
            f"{', '.join(map(repr, known))} (each also as 'compressed/<name>'; register "
            "others with fluvial.serialization.register_serializer)")


def check_result_storage(owner: str, value: Any) -> None:
    """None, a directory path, or a filesystem object with ``write_path``/``read_path``."""
    if value is None or isinstance(value, (str, os.PathLike)):
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"{owner}: result_storage must be a directory, got {value!r}")
        return
    if hasattr(value, "write_path") and hasattr(value, "read_path"):
        return
    raise TypeError(f"{owner}: result_storage must be a directory, a filesystem block or its "
                    f"'block-type/name' slug, got {value!r}")


def as_tags(owner: str, tags: Any) -> frozenset[str]:
    """Tags as a frozenset of strings (a single string is one tag)."""
    if tags is None:
        return frozenset()
    if isinstance(tags, str):
        return frozenset([tags])
    if not isinstance(tags, Iterable):
        raise TypeError(f"{owner}: tags must be a list of strings, got {tags!r}")
    tags = frozenset(tags)
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"{owner}: tags must be strings, got {tag!r}")
    return tags


def register_hook(owner: Any, option: str, fn: Any) -> Any:
    """``@my_task.on_completion`` and friends: add ``fn`` to the hooks, return it."""
    if not callable(fn):
        raise TypeError(f"{type(owner).__name__.lower()} {owner.name!r}: {option} hooks must "
                        f"be callables, got {fn!r}")
    hooks = getattr(owner, f"{option}_hooks")
    hooks.append(fn)
    owner._options[option] = tuple(hooks)  # with_options copies carry it
    return fn


def as_hooks(owner: str, option: str, hooks: Any) -> tuple[Callable[..., Any], ...]:
    """Hooks as a tuple of callables (a single callable is one hook)."""
    if hooks is None:
        return ()
    if callable(hooks):
        hooks = [hooks]
    if not isinstance(hooks, Iterable):
        raise TypeError(f"{owner}: {option} must be a list of callables, got {hooks!r}")
    hooks = tuple(hooks)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"{owner}: {option} hooks must be callables, got {hook!r}")
    return hooks


def check_max_in_flight(owner: str, value: Any) -> int | None:
    """``value`` if it is None or a positive int; else a TypeError/ValueError naming ``owner``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: max_in_flight must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: max_in_flight must be at least 1, got {value}")
    return value
