"""The pipe between the recorder and its writer process: framing and batch encoding.

A frame is a 4-byte little-endian length and a pickle. The driver's side does
as little as it can while holding the GIL: a batch is pickled in C, and the
only Python called per event is the reducer of each distinct ``UUID`` (its
128-bit ``int``; the pickle memo sends a run's id once per batch, and the
writer formats it once). Anything that is not a builtin value is turned into
one in the driver (an enum into its value, other objects into their ``str``),
so the writer never imports the user's code: its unpickler knows three
callables and nothing else.
"""

from __future__ import annotations

import io
import os
import pickle
import select
import struct
import types
from collections.abc import Callable
from enum import Enum
from typing import Any
from uuid import UUID

from fluvial.exceptions import WireError

__all__ = ["FrameReader", "WireError", "decode", "encode", "uuid_text", "write_frame"]

_HEADER = struct.Struct("<I")
MAX_FRAME = 2**31  # a batch is far smaller; anything larger is a broken stream


def uuid_text(value: int) -> str:
    """``str(UUID(int=value))``, without building the UUID."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reduce_uuid(value: UUID) -> tuple:
    return uuid_text, (value.int,)


def _as_text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _reduce_other(value: Any) -> tuple:
    """Any other non-builtin value, as the builtin value the writer would make of it."""
    if isinstance(value, Enum):
        return _identity, (value.value,)
    if isinstance(value, int):
        return int, (int(value),)
    if isinstance(value, float):
        return float, (float(value),)
    if isinstance(value, str):
        return str, (_as_text(value),)
    if isinstance(value, (bytes, bytearray)):
        return bytes, (bytes(value),)
    if isinstance(value, (list, tuple, set, frozenset)) or (
        hasattr(value, "__iter__") and not hasattr(value, "keys")
    ):
        try:  # tags given as a generator, a dict view, a custom collection
            return list, (list(value),)
        except Exception:
            pass
    return str, (_as_text(value),)


def _identity(value: Any) -> Any:
    return value


class _Reducers(dict):
    """The pickler's dispatch table: UUIDs by their int, every other type made builtin."""

    def __missing__(self, cls: type) -> Any:
        return _reduce_other


_DISPATCH = _Reducers({UUID: _reduce_uuid})


class _SafePickler(pickle.Pickler):
    """Also turns classes and functions (pickled by name otherwise) into builtin values."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _BY_NAME) and not any(obj is known for known in _ALLOWED.values()):
            return str, (_as_text(obj),)
        return NotImplemented


_BY_NAME = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def encode(message: Any) -> bytes:
    """A frame holding ``message`` (tuples, lists and dicts of builtin values and UUIDs)."""
    try:
        return _encode(message, pickle.Pickler)
    except Exception:  # a class or a function by name, a local one even: rare, slower
        return _encode(message, _SafePickler)


def _encode(message: Any, pickler_class: type[pickle.Pickler]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    pickler = pickler_class(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(message)
    frame = buffer.getbuffer()
    _HEADER.pack_into(frame, 0, len(frame) - 4)
    del frame
    return buffer.getvalue()


_ALLOWED = {
    ("fluvial.store.writer.wire", "uuid_text"): uuid_text,
    ("fluvial.store.writer.wire", "_identity"): _identity,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "str"): str,
    ("builtins", "bytes"): bytes,
    ("builtins", "list"): list,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:  # a class or function passed by reference: keep its name
            return f"{module}.{name}"
        return found


def decode(payload: bytes | bytearray | memoryview) -> Any:
    """The message of a frame's payload."""
    return _Unpickler(io.BytesIO(payload)).load()


def write_frame(fd: int, frame: bytes) -> None:
    """Write all of ``frame`` to ``fd`` (raises ``OSError``, e.g. on a closed pipe)."""
    view = memoryview(frame)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Reads frames from a file descriptor; ``read()`` is None at a clean end of stream.

    With ``give_up`` (a callable), the reader waits at most ``poll`` seconds at a
    time for data, and when none came and ``give_up()`` is true it raises
    ``WireError``: a writer process whose driver died stops waiting even if
    another process (a forked child) still holds the pipe open.
    """

    def __init__(
        self, fd: int, give_up: Callable[[], bool] | None = None, poll: float = 0.5
    ) -> None:
        self._fd = fd
        self._give_up = give_up
        self._poll = poll

    def _wait(self) -> None:
        if self._give_up is None:
            return
        while not select.select([self._fd], [], [], self._poll)[0]:
            if self._give_up():
                raise WireError("the other end went away")

    def _exactly(self, n: int) -> bytearray | None:
        data = bytearray()
        while len(data) < n:
            self._wait()
            chunk = os.read(self._fd, min(n - len(data), 1 << 20))
            if not chunk:
                if data:
                    raise WireError(f"stream ended inside a frame ({len(data)} of {n} bytes)")
                return None
            data += chunk
        return data

    def read_payload(self) -> bytearray | None:
        header = self._exactly(4)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME:
            raise WireError(f"frame of {size} bytes")
        payload = self._exactly(size) if size else bytearray()
        if payload is None:
            raise WireError("stream ended after a frame header")
        return payload

    def read(self) -> Any:
        payload = self.read_payload()
        return None if payload is None else decode(payload)
