"""Exceptions raised by ``fluvial.serialization``: defined in :mod:`fluvial.exceptions`.

FluvialError
 ├── SerializationError   (also TypeError) a serializer cannot encode an object (names its type)
 ├── HashError            (also TypeError) an input cannot be hashed into a cache key (names it)
 └── ResultRecordError    a stored result record is missing, truncated or corrupt
"""

from __future__ import annotations

from fluvial.exceptions import HashError, ResultRecordError, SerializationError

__all__ = ["HashError", "ResultRecordError", "SerializationError"]
