"""Variables: small named JSON values shared by every flow that reads the run record.

``Variable.set(name, value)`` / ``Variable.get(name, default)`` / ``Variable.unset(name)``,
and ``aset`` / ``aget`` / ``aunset`` for async code, as in ``prefect.variables``. Names
follow Prefect's rule (lowercase letters, digits and underscores, at most 255
characters); values are JSON (strings, numbers, booleans, None, lists, dicts).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["Variable"]

MAX_NAME_LENGTH = 255
MAX_VALUE_BYTES = 1 << 20  # a variable is configuration, not a data store
_NAME = re.compile(r"^[a-z0-9_]+$")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"variable name must be a string, got {type(name).__name__}")
    if not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"invalid variable name {name!r}: use lowercase letters, digits and underscores, "
            f"at most {MAX_NAME_LENGTH} characters"
        )
    return name


def _encode(name: str, value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the value of variable {name!r} must be JSON (str, int, float, bool, None, "
            f"list, dict): {exc}"
        ) from exc
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise ValueError(f"the value of variable {name!r} is larger than {MAX_VALUE_BYTES} bytes")
    return text


def _check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise TypeError(f"variable tags must be a list of non-empty strings, got {tags!r}")
    return list(tags)


class Variable(BaseModel):
    """A named JSON value in the run record."""

    name: str = Field(description="lowercase letters, digits and underscores")
    value: Any = None
    tags: list[str] = Field(default_factory=list)

    @classmethod
    def set(cls, name: str, value: Any, tags: list[str] | None = None,
            overwrite: bool = False) -> Variable:
        """Store ``value`` under ``name``; a name that exists needs ``overwrite=True``."""
        from fluvial.store import catalog

        name = _check_name(name)
        tag_list = _check_tags(tags)
        row = catalog.put_variable(name, _encode(name, value), tag_list, overwrite)
        if row is None:
            raise ValueError(
                f"variable {name!r} already exists; pass overwrite=True to replace it"
            )
        return cls(name=row.name, value=row.value, tags=list(row.tags))

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The value stored under ``name``, or ``default`` when there is none."""
        from fluvial.store import catalog

        row = catalog.get_variable(_check_name(name))
        return default if row is None else row.value

    @classmethod
    def unset(cls, name: str) -> bool:
        """Remove ``name``; False when it did not exist."""
        from fluvial.store import catalog

        return catalog.delete_variable(_check_name(name))

    @classmethod
    async def aset(cls, name: str, value: Any, tags: list[str] | None = None,
                   overwrite: bool = False) -> Variable:
        return await asyncio.to_thread(cls.set, name, value, tags, overwrite)

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        return await asyncio.to_thread(cls.get, name, default)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        return await asyncio.to_thread(cls.unset, name)
