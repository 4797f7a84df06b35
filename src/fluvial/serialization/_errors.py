"""Exceptions raised by ``fluvial.serialization``.

TypeError
 ├── SerializationError   a serializer cannot encode an object (names its type)
 └── HashError            an input cannot be hashed into a cache key (names it)
Exception
 └── ResultRecordError    a stored result record is missing, truncated or corrupt
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HashError", "ResultRecordError", "SerializationError"]


class SerializationError(TypeError):
    """An object cannot be encoded by the chosen serializer."""


class HashError(TypeError):
    """An object (or a task parameter) cannot be turned into a stable hash."""


class ResultRecordError(Exception):
    """A result record cannot be read: missing, truncated, corrupted or undecodable.

    ``path`` is the record's file and ``reason`` says what is wrong with it.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(path, reason)  # args kept so the error pickles across processes
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"result record '{self.path}' {self.reason}"
