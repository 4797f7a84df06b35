"""Stable hashing of inputs into cache keys, identical across processes and restarts.

Objects are first put in a canonical form and then encoded with the msgpack codec:
dict entries are sorted (by key when all keys are ``str``, otherwise by each key's
canonical encoding), set and frozenset elements are sorted by their encodings, and any
value the codec cannot encode is replaced by its cloudpickle bytes. Nothing depends on
``id()`` or on ``hash()`` randomisation, so dict insertion order and ``PYTHONHASHSEED``
do not change a key. A value that cannot even be pickled raises ``HashError`` naming it.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import CodeType
from typing import Any

from fluvial.exceptions import CacheKeyWarning

from ._errors import HashError, SerializationError
from ._identity import function_identity
from ._msgpack import ExtType, packb_strict, to_ext

__all__ = ["hash_inputs", "hash_objects", "source_hash", "task_input_hash"]

HashAlgo = Callable[..., Any] | str

_EXT_SET = 2
_EXT_FROZENSET = 3
_EXT_PICKLED = 100  # hashing only: cloudpickle bytes of an object msgpack cannot encode
_VERSION = b"fluvial-hash-1\0"
_NATIVE = frozenset({type(None), bool, int, float, str, bytes})


class _Unhashable(Exception):
    """Internal: carries the failing object and its path up to the public entry point."""

    def __init__(self, obj: Any, reason: str) -> None:
        self.obj = obj
        self.reason = reason
        self.path: list[str] = []


def _pickled(obj: Any) -> ExtType:
    import cloudpickle

    try:
        return ExtType(_EXT_PICKLED, cloudpickle.dumps(obj, protocol=5))
    except Exception as exc:
        raise _Unhashable(obj, f"it cannot be pickled: {exc}") from exc


def _canon_dict(obj: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    key: Any = None
    try:
        if all(type(k) is str for k in obj):
            for key in sorted(obj):
                value = obj[key]
                out[key] = value if type(value) in _NATIVE else _canon(value)
            return out
        for key, value in obj.items():
            out[_canon(key)] = value if type(value) in _NATIVE else _canon(value)
    except _Unhashable as exc:
        exc.path.insert(0, f"[{key!r}]")
        raise
    return dict(sorted(out.items(), key=lambda kv: packb_strict(kv[0])))


def _canon(obj: Any) -> Any:
    cls = type(obj)
    if cls in _NATIVE:
        return obj
    if cls is dict:
        return _canon_dict(obj)
    if cls is list or cls is tuple:
        out: list[Any] = []
        try:
            for item in obj:
                out.append(item if type(item) in _NATIVE else _canon(item))
        except _Unhashable as exc:
            exc.path.insert(0, f"[{len(out)}]")
            raise
        return out if cls is list else tuple(out)
    if cls is set or cls is frozenset:
        try:
            members = sorted(packb_strict(_canon(item)) for item in obj)
        except _Unhashable as exc:
            exc.path.insert(0, "{...}")
            raise
        return ExtType(_EXT_SET if cls is set else _EXT_FROZENSET, b"".join(members))
    try:
        return to_ext(obj)
    except SerializationError:
        return _pickled(obj)


def _hasher(hash_algo: HashAlgo) -> Any:
    return hashlib.new(hash_algo) if isinstance(hash_algo, str) else hash_algo()


def _digest(canonical: Any, hash_algo: HashAlgo) -> str:
    hasher = _hasher(hash_algo)
    hasher.update(_VERSION)
    hasher.update(packb_strict(canonical))
    return hasher.hexdigest()


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _canon_named(obj: Any, what: str, hint: str = "") -> Any:
    """Canonical form of ``obj``, or HashError saying which ``what`` failed and why."""
    cause: BaseException | None = None
    try:
        return _canon(obj)
    except _Unhashable as exc:
        detail = exc.reason
        if exc.path or exc.obj is not obj:
            where = f" at {''.join(exc.path)}" if exc.path else ""
            detail = f"value of type {_type_name(exc.obj)}{where}: {exc.reason}"
        error = HashError(f"{what} of type {_type_name(obj)} cannot be hashed ({detail}){hint}")
        cause = exc.__cause__
    except RecursionError:
        error = HashError(
            f"{what} of type {_type_name(obj)} cannot be hashed "
            f"(it is self-referential or too deeply nested){hint}"
        )
    raise error from cause


def hash_objects(*objs: Any, hash_algo: HashAlgo = hashlib.sha256, **kwargs: Any) -> str:
    """Hex digest of ``objs`` (and ``kwargs``), stable across processes and restarts.

    ``hash_algo`` is a hashlib constructor (default ``hashlib.sha256``) or a hashlib name.
    Raises ``HashError`` naming the first argument that cannot be hashed.
    """
    positional = [_canon_named(obj, f"argument {i}") for i, obj in enumerate(objs)]
    keywords = {k: _canon_named(kwargs[k], f"keyword argument {k!r}") for k in sorted(kwargs)}
    return _digest([positional, keywords], hash_algo)


def hash_inputs(
    arguments: Mapping[str, Any],
    *,
    exclude: Iterable[str] = (),
    hash_algo: HashAlgo = hashlib.sha256,
) -> str:
    """Hex digest of a parameters mapping, independent of its order, minus ``exclude``.

    Raises ``HashError`` naming the parameter whose value cannot be hashed.
    """
    if not isinstance(arguments, Mapping):
        raise TypeError(
            f"arguments must be a mapping of parameter names, got {type(arguments).__name__}"
        )
    skipped = {exclude} if isinstance(exclude, str) else set(exclude)
    canonical = {
        name: _canon_named(
            arguments[name],
            f"parameter {name!r}",
            f"; exclude it from the cache key with cache_policy=INPUTS - {name!r} "
            f"or hash_inputs(..., exclude=[{name!r}])",
        )
        for name in sorted(arguments)
        if name not in skipped
    }
    return _digest(canonical, hash_algo)


def _task_identity(context: Any) -> str | None:
    task = getattr(context, "task", None)
    key = getattr(task, "task_key", None)
    if isinstance(key, str):
        return key
    fn = getattr(task, "fn", None)
    if fn is not None and getattr(fn, "__module__", None) and getattr(fn, "__qualname__", None):
        return function_identity(fn)
    return None


def task_input_hash(context: Any, arguments: Mapping[str, Any]) -> str | None:
    """Prefect-compatible cache key function: task identity + inputs, or None.

    ``context`` is any object whose ``.task`` has ``.fn`` or ``.task_key`` (or None).
    When an input cannot be hashed, warns naming the parameter and returns None, so the
    run simply is not cached.
    """
    identity = _task_identity(context)
    try:
        inputs = hash_inputs(arguments)
    except HashError as exc:
        task = f"task {identity!r}" if identity else "the task"
        warnings.warn(f"cannot compute a cache key for {task}: {exc}", CacheKeyWarning,
                      stacklevel=2)
        return None
    return hash_objects(identity, inputs)


def _code_key(code: CodeType) -> tuple[Any, ...]:
    consts = tuple(_code_key(c) if isinstance(c, CodeType) else c for c in code.co_consts)
    return (code.co_code, consts, code.co_names)


def source_hash(fn: Callable[..., Any]) -> str:
    """Hex digest of a function's source (or, without source, of its bytecode and constants)."""
    import inspect
    import textwrap

    target = fn if inspect.isroutine(fn) else getattr(fn, "fn", fn)
    try:
        return hash_objects("source", textwrap.dedent(inspect.getsource(target)))
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        if not isinstance(code, CodeType):
            raise HashError(
                f"cannot hash the source of {target!r}: no source and no code object"
            ) from None
        return hash_objects("code", _code_key(code))
