"""The registry of named serializers: ``(dumps, loads)`` pairs looked up by name.

Built-ins: ``"msgpack"`` (plain data, see ``_msgpack``), ``"json"`` (human-readable,
see ``_json``) and ``"cloudpickle"`` (any picklable object; cloudpickle is imported on
first dump, loading needs only ``pickle``). ``"compressed/<name>"`` wraps any registered
serializer with **zlib** (stdlib, level 6): chosen over lz4 so that every record can be
read on every install, with no optional dependency deciding the on-disk format.

Third parties call :func:`register_serializer`, or :func:`register_lazy_serializer`
with a factory that is only called (and its heavy imports paid for) on first use.
"""

from __future__ import annotations

import pickle
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import SerializationError
from ._json import json_dumps, json_loads
from ._msgpack import msgpack_dumps, msgpack_loads

__all__ = [
    "Serializer",
    "dumps_with_fallback",
    "get_serializer",
    "register_lazy_serializer",
    "register_serializer",
    "serializer_names",
]

COMPRESSED_PREFIX = "compressed/"
ZLIB_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Serializer:
    """A named pair of functions: ``dumps(obj) -> bytes`` and ``loads(bytes) -> obj``."""

    name: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


_lock = threading.Lock()
_factories: dict[str, Callable[[], Serializer]] = {}
_resolved: dict[str, Serializer] = {}


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"serializer name must be a non-empty str, got {name!r}")
    if name.startswith(COMPRESSED_PREFIX):
        raise ValueError(
            f"serializer name {name!r} is reserved: {COMPRESSED_PREFIX}<name> is derived "
            "automatically from any registered serializer"
        )
    return name


def _add(name: str, factory: Callable[[], Serializer], replace: bool) -> None:
    with _lock:
        if name in _factories and not replace:
            raise ValueError(
                f"a serializer named {name!r} is already registered; pass replace=True to replace it"
            )
        _factories[name] = factory
        for cached in [n for n in _resolved if n == name or n.endswith("/" + name)]:
            del _resolved[cached]


def register_serializer(
    name: str,
    dumps: Callable[[Any], bytes],
    loads: Callable[[bytes], Any],
    *,
    replace: bool = False,
) -> Serializer:
    """Register ``(dumps, loads)`` under ``name``; ``replace=True`` overrides an existing one."""
    _check_name(name)
    if not callable(dumps):
        raise TypeError(f"dumps must be callable, got {dumps!r}")
    if not callable(loads):
        raise TypeError(f"loads must be callable, got {loads!r}")
    serializer = Serializer(name, dumps, loads)
    _add(name, lambda: serializer, replace)
    return serializer


def register_lazy_serializer(
    name: str,
    factory: Callable[[], tuple[Callable[[Any], bytes], Callable[[bytes], Any]]],
    *,
    replace: bool = False,
) -> None:
    """Register ``name`` whose ``(dumps, loads)`` come from ``factory()`` on first use."""
    _check_name(name)
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")

    def build() -> Serializer:
        dumps, loads = factory()
        return Serializer(name, dumps, loads)

    _add(name, build, replace)


def serializer_names() -> list[str]:
    """The registered names, sorted (each also available as ``compressed/<name>``)."""
    return sorted(_factories)


def _compressed(name: str) -> Serializer:
    inner = get_serializer(name[len(COMPRESSED_PREFIX) :])

    def dumps(obj: Any) -> bytes:
        return zlib.compress(inner.dumps(obj), ZLIB_LEVEL)

    def loads(data: bytes) -> Any:
        return inner.loads(zlib.decompress(data))

    return Serializer(name, dumps, loads)


def get_serializer(name: str) -> Serializer:
    """The serializer registered as ``name`` (or ``compressed/<name>``); ValueError if unknown."""
    serializer = _resolved.get(name)
    if serializer is not None:
        return serializer
    if not isinstance(name, str):
        raise TypeError(f"serializer name must be a str, got {type(name).__name__}")
    if name.startswith(COMPRESSED_PREFIX):
        serializer = _compressed(name)
    else:
        factory = _factories.get(name)
        if factory is None:
            known = ", ".join(repr(n) for n in serializer_names())
            raise ValueError(
                f"unknown serializer {name!r}; known serializers: {known} "
                f"(each also as '{COMPRESSED_PREFIX}<name>')"
            )
        serializer = factory()
    _resolved[name] = serializer
    return serializer


def _cloudpickle() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    import cloudpickle

    def dumps(obj: Any) -> bytes:
        try:
            return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            cls = type(obj)
            raise SerializationError(
                f"cloudpickle cannot serialize object of type {cls.__module__}.{cls.__qualname__}: {exc}"
            ) from exc

    return dumps, pickle.loads


def dumps_with_fallback(obj: Any) -> tuple[str, bytes]:
    """``("msgpack", data)`` for plain data, else ``("cloudpickle", data)``."""
    try:
        return "msgpack", msgpack_dumps(obj)
    except SerializationError:
        return "cloudpickle", get_serializer("cloudpickle").dumps(obj)


register_serializer("msgpack", msgpack_dumps, msgpack_loads)
register_serializer("json", json_dumps, json_loads)
register_lazy_serializer("cloudpickle", _cloudpickle)
