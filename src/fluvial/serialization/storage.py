"""Result storage: one file per key, written atomically, with a self-describing header.

Record layout (version 1)::

    b"FLVR" | version: u8 | header_len: u32 BE | header_crc32: u32 BE
    header: UTF-8 JSON {"serializer", "created_at", "expires_at", "size", "crc32"}
    payload: ``size`` bytes written by the named serializer, checked against ``crc32``

A write goes to a hidden temp file in the same directory and is moved into place with
``os.replace``, so a reader (or a crash) sees the old record or the new one, never half
of one. ``read_meta`` reads only the prefix and header, so a cache layer can check
expiry without loading the payload.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from fluvial._files import PRIVATE_FILE, private_dir

from ._errors import ResultRecordError
from ._registry import dumps_with_fallback, get_serializer

__all__ = ["FileSystemResultStore", "RecordMeta", "ResultStore", "default_storage_dir",
           "decode_record", "encode_record"]

MAGIC = b"FLVR"
VERSION = 1
_PREFIX = struct.Struct(">4sBII")
_MAX_HEADER = 1 << 16


def default_storage_dir() -> Path:
    """``$FLUVIAL_HOME/storage``, with ``FLUVIAL_HOME`` defaulting to ``~/.fluvial``."""
    from fluvial import settings

    return settings.home() / "storage"


@dataclass(frozen=True, slots=True)
class RecordMeta:
    """What a record's header says about it, read without loading the payload."""

    key: str
    path: Path | str
    serializer: str
    created_at: datetime
    expires_at: datetime | None
    size: int

    def is_expired(self, now: datetime | None = None) -> bool:
        """True when the record has an expiry and ``now`` (default: current UTC) is past it."""
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires_at


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid record key, else raise ValueError/TypeError."""
    if not isinstance(key, str):
        raise TypeError(f"result key must be a str, got {type(key).__name__}")
    if not key or key.startswith(".") or "\0" in key:
        raise ValueError(
            f"invalid result key {key!r}: must be non-empty, not start with '.', no NUL"
        )
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(sep in key for sep in seps):
        raise ValueError(f"invalid result key {key!r}: must not contain a path separator")
    if len(key.encode("utf-8", "surrogatepass")) > 255:
        raise ValueError(f"invalid result key {key[:32]!r}...: longer than 255 bytes")
    return key


class ResultStore:
    """Results stored as files under ``directory`` (default :func:`default_storage_dir`).

    ``fsync=True`` flushes each record (and the directory entry) to disk before
    returning, for durability across power loss; atomicity holds either way.
    """

    def __init__(self, directory: Path | str | None = None, *, fsync: bool = False) -> None:
        self.directory = Path(directory) if directory is not None else default_storage_dir()
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"ResultStore({str(self.directory)!r})"

    def path_for(self, key: str) -> Path:
        """The file that holds (or would hold) the record for ``key``."""
        return self.directory / validate_key(key)

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> bool:
        """Remove the record; return whether there was one."""
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def write(
        self,
        key: str,
        obj: Any,
        serializer: str | None = None,
        *,
        expires_at: datetime | None = None,
    ) -> Path:
        """Serialize ``obj`` and store it atomically under ``key``; return the file.

        ``serializer`` is a registered name; None means msgpack with a cloudpickle
        fallback (:func:`dumps_with_fallback`). ``expires_at`` must be timezone-aware.
        """
        path = self.path_for(key)
        record = encode_record(obj, serializer, expires_at)
        private_dir(self.directory)
        tmp = self.directory / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     PRIVATE_FILE)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(record)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.fsync and hasattr(os, "O_DIRECTORY"):
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return path

    def read_meta(self, key: str) -> RecordMeta:
        """The record's header (serializer, created_at, expires_at, size), payload unread."""
        path = self.path_for(key)
        with _open(path) as file:
            file_size = os.fstat(file.fileno()).st_size
            meta, offset, _ = _read_header(path, key, file)
        _check_size(path, meta, file_size - offset)
        return meta

    def read(self, key: str) -> Any:
        """Load the object stored under ``key``; ResultRecordError if missing or damaged."""
        path = self.path_for(key)
        with _open(path) as file:
            data = file.read()
        return decode_record(path, key, data)


def encode_record(obj: Any, serializer: str | None = None,
                  expires_at: datetime | None = None) -> bytes:
    """``obj`` as one record: prefix, header, payload (see the module docstring)."""
    if expires_at is not None and expires_at.utcoffset() is None:
        raise ValueError("expires_at must be a timezone-aware datetime")
    if serializer is None:
        name, payload = dumps_with_fallback(obj)
    else:
        ser = get_serializer(serializer)
        name, payload = ser.name, ser.dumps(obj)
    header = json.dumps(
        {
            "serializer": name,
            "created_at": datetime.now(UTC).isoformat(),
            "expires_at": None if expires_at is None else expires_at.isoformat(),
            "size": len(payload),
            "crc32": zlib.crc32(payload),
        },
        separators=(",", ":"),
    ).encode("utf-8")
    return _PREFIX.pack(MAGIC, VERSION, len(header), zlib.crc32(header)) + header + payload


def decode_record(path: Any, key: str, data: bytes) -> Any:
    """The object in a whole record read from ``path`` (named in errors)."""
    meta, offset, crc = _read_header(path, key, _Bytes(data))
    _check_size(path, meta, len(data) - offset)
    payload = data[offset:]
    if zlib.crc32(payload) != crc:
        raise ResultRecordError(path, "is corrupted: payload checksum mismatch")
    try:
        serializer = get_serializer(meta.serializer)
    except ValueError as exc:
        raise ResultRecordError(
            path, f"was written with serializer {meta.serializer!r}, unknown here: {exc}"
        ) from exc
    try:
        return serializer.loads(payload)
    except Exception as exc:
        raise ResultRecordError(
            path, f"cannot be decoded with serializer {meta.serializer!r}: {exc!r}"
        ) from exc


def decode_meta(path: Any, key: str, data: bytes) -> RecordMeta:
    """The header of a whole record read from ``path``."""
    meta, offset, _ = _read_header(path, key, _Bytes(data))
    _check_size(path, meta, len(data) - offset)
    return meta


class FileSystemResultStore:
    """Results as records on a filesystem block (``RemoteFileSystem``, or any object with
    ``read_path``/``write_path``/``exists``/``delete_path``), in the same format as
    :class:`ResultStore`. Locks for SERIALIZABLE caching stay local, under ``lock_root``."""

    def __init__(self, filesystem: Any, lock_root: Path | None = None) -> None:
        self.filesystem = filesystem
        self.directory = lock_root or default_storage_dir()

    def __repr__(self) -> str:
        return f"FileSystemResultStore({self.filesystem!r})"

    def path_for(self, key: str) -> str:
        return validate_key(key)

    def exists(self, key: str) -> bool:
        return bool(self.filesystem.exists(self.path_for(key)))

    def delete(self, key: str) -> bool:
        return bool(self.filesystem.delete_path(self.path_for(key)))

    def write(self, key: str, obj: Any, serializer: str | None = None, *,
              expires_at: datetime | None = None) -> str:
        return str(self.filesystem.write_path(self.path_for(key),
                                              encode_record(obj, serializer, expires_at)))

    def _data(self, key: str) -> bytes:
        try:
            return bytes(self.filesystem.read_path(self.path_for(key)))
        except (OSError, ValueError) as exc:
            raise ResultRecordError(key, f"cannot be read: {exc}") from exc

    def read_meta(self, key: str) -> RecordMeta:
        return decode_meta(key, key, self._data(key))

    def read(self, key: str) -> Any:
        return decode_record(key, key, self._data(key))


class _Bytes:
    """Minimal file-like reader over bytes already in memory."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ResultRecordError(path, "is missing") from None
    except OSError as exc:
        raise ResultRecordError(path, f"cannot be opened: {exc}") from exc


def _read_header(path: Path, key: str, file: Any) -> tuple[RecordMeta, int, int]:
    """Parse prefix + header; return (meta, payload offset, payload crc32)."""
    prefix = file.read(_PREFIX.size)
    if not prefix:
        raise ResultRecordError(path, "is truncated: the file is empty")
    if prefix[:4] != MAGIC[: len(prefix)]:
        raise ResultRecordError(path, "is not a fluvial result record (bad magic bytes)")
    if len(prefix) < _PREFIX.size:
        raise ResultRecordError(path, f"is truncated: {len(prefix)} bytes, shorter than its prefix")
    _, version, header_len, header_crc = _PREFIX.unpack(prefix)
    if version != VERSION:
        raise ResultRecordError(
            path, f"has unsupported record version {version} (expected {VERSION})"
        )
    if header_len > _MAX_HEADER:
        raise ResultRecordError(path, f"is corrupted: header length {header_len} is implausible")
    header = file.read(header_len)
    if len(header) < header_len:
        raise ResultRecordError(
            path, f"is truncated: header needs {header_len} bytes, only {len(header)} present"
        )
    if zlib.crc32(header) != header_crc:
        raise ResultRecordError(path, "is corrupted: header checksum mismatch")
    try:
        fields = json.loads(header)
        expires = fields["expires_at"]
        meta = RecordMeta(
            key=key,
            path=path,
            serializer=str(fields["serializer"]),
            created_at=datetime.fromisoformat(fields["created_at"]),
            expires_at=None if expires is None else datetime.fromisoformat(expires),
            size=int(fields["size"]),
        )
        crc = int(fields["crc32"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ResultRecordError(path, f"is corrupted: unreadable header ({exc!r})") from exc
    return meta, _PREFIX.size + header_len, crc


def _check_size(path: Path, meta: RecordMeta, available: int) -> None:
    if available < meta.size:
        raise ResultRecordError(path, f"is truncated: payload has {available} of {meta.size} bytes")
    if available > meta.size:
        raise ResultRecordError(
            path, f"is corrupted: {available - meta.size} unexpected bytes after the payload"
        )
