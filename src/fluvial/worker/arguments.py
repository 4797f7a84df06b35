"""Futures inside a task's arguments: find them, stand markers in their place, and put
the upstream results back just before the task runs.

``extract`` walks top-level arguments and the plain containers inside them (list,
tuple, set, frozenset, dict, dataclass instances) and returns a template in which
each future is an ``Upstream(i)`` marker, plus the futures in marker order. Only
containers that hold a future are copied. ``quote`` values are passed through untouched;
``opaque`` too, except that a future given directly is still an upstream. Futures inside
``allow_failure(...)`` are upstreams whose failure does not stop the run: their indexes
go to ``allowed``. ``resolve`` is the inverse, given the upstream results.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fluvial.annotations import allow_failure, opaque, quote, unmapped
from fluvial.futures import Future, FutureList

__all__ = ["ATOMIC", "Upstream", "extract", "extract_call", "resolve_call"]

ATOMIC: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None), complex})
_ATOMIC = ATOMIC


class Upstream:
    """Marks where the result of upstream number ``index`` goes."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (Upstream, (self.index,))

    def __repr__(self) -> str:
        return f"Upstream({self.index})"


def extract(obj: Any, found: list[Future], allowed: list[int] | None = None) -> Any:
    """Return ``obj`` with futures replaced by markers; append the futures to ``found``
    (and the indexes of those inside ``allow_failure`` to ``allowed``)."""
    cls = type(obj)
    if cls in _ATOMIC:
        return obj
    if isinstance(obj, Future):
        found.append(obj)
        return Upstream(len(found) - 1)
    if isinstance(obj, quote):
        if cls is opaque and isinstance(obj.value, Future):
            return extract(obj.value, found, allowed)
        return obj.value
    if cls is unmapped:
        return extract(obj.value, found, allowed)
    if cls is allow_failure:
        start = len(found)
        template = extract(obj.value, found, allowed)
        if allowed is not None:
            allowed.extend(range(start, len(found)))
        return template
    if cls is list or cls is tuple or cls is set or cls is frozenset:
        before = len(found)
        items = [extract(item, found, allowed) for item in obj]
        return obj if len(found) == before else cls(items)
    if cls is FutureList:  # a map's futures passed on: the task gets the list of results
        return [extract(item, found, allowed) for item in obj]
    if cls is dict:
        before = len(found)
        pairs = {key: extract(value, found, allowed) for key, value in obj.items()}
        return obj if len(found) == before else pairs
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        before = len(found)
        changes = {
            f.name: extract(getattr(obj, f.name), found, allowed)
            for f in dataclasses.fields(obj)
            if f.init
        }
        return obj if len(found) == before else dataclasses.replace(obj, **changes)
    return obj


def extract_call(args: tuple, kwargs: dict, found: list[Future],
                 allowed: list[int] | None = None) -> tuple[tuple, dict]:
    """``extract`` over a call's positional and keyword arguments."""
    for a in args:
        if type(a) not in _ATOMIC:
            break
    else:
        for v in kwargs.values():
            if type(v) not in _ATOMIC:
                break
        else:
            return args, kwargs  # plain scalars only: nothing to look into
    new_args = tuple(extract(a, found, allowed) for a in args) if args else args
    new_kwargs = {k: extract(v, found, allowed) for k, v in kwargs.items()} if kwargs else kwargs
    return new_args, new_kwargs


def _resolve(obj: Any, values: list[Any]) -> Any:
    cls = type(obj)
    if cls in _ATOMIC:
        return obj
    if cls is Upstream:
        return values[obj.index]
    if cls is list or cls is tuple or cls is set or cls is frozenset:
        return cls(_resolve(item, values) for item in obj)
    if cls is dict:
        return {key: _resolve(value, values) for key, value in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: _resolve(getattr(obj, f.name), values) for f in dataclasses.fields(obj) if f.init
        }
        return dataclasses.replace(obj, **changes)
    return obj


def resolve_call(args: tuple, kwargs: dict, values: list[Any]) -> tuple[tuple, dict]:
    """Put upstream ``values`` back where the markers stand."""
    return (
        tuple(_resolve(a, values) for a in args),
        {k: _resolve(v, values) for k, v in kwargs.items()},
    )
