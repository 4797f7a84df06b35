"""Argument annotations: ``unmapped`` (pass whole to every mapped call), ``quote`` and
``opaque`` (pass as-is: fluvial does not look inside for futures)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["BaseAnnotation", "opaque", "quote", "unmapped"]


class BaseAnnotation(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.value == other.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.value,))


class unmapped(BaseAnnotation[T]):
    """Pass this argument whole to every call of a ``Task.map``."""


class quote(BaseAnnotation[T]):
    """Pass this argument as-is: futures inside it are not resolved."""


class opaque(quote[T]):
    """Like ``quote``: the value is passed through untouched."""
