"""Argument annotations, as in ``prefect.utilities.annotations``:

* ``unmapped(x)``: pass ``x`` whole to every run of a ``Task.map``;
* ``allow_failure(future)``: the downstream runs even if that upstream failed, and
  receives the upstream's exception in its place (also in ``wait_for=``);
* ``quote(x)``: pass ``x`` as-is, without looking inside it for futures (``.unquote()``);
* ``opaque(x)``: like ``quote`` for what is inside ``x``, but a future given directly is
  still resolved to its result.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["BaseAnnotation", "NotSet", "Quote", "allow_failure", "opaque", "quote", "unmapped"]


class BaseAnnotation(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def rewrap(self, value: T) -> BaseAnnotation[T]:
        """The same annotation around another value."""
        return type(self)(value)

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

    def __getitem__(self, _: object) -> T:
        return self.value  # an endless sequence of the same value, as in Prefect


class allow_failure(BaseAnnotation[T]):
    """Let the downstream run even if this upstream (a future, or futures inside a
    container) did not complete; a failed upstream's exception is passed in its place."""


class quote(BaseAnnotation[T]):
    """Pass this argument as-is: futures inside it are not resolved."""

    def unquote(self) -> T:
        return self.value


class Quote(quote[T]):
    """Deprecated spelling of ``quote`` (as in Prefect)."""

    def __init__(self, value: T) -> None:
        import warnings

        from fluvial.exceptions import FluvialDeprecationWarning

        warnings.warn("Use of `Quote` is deprecated. Use `quote` instead.",
                      FluvialDeprecationWarning, stacklevel=2)
        super().__init__(value)


class opaque(quote[T]):
    """Pass the value without looking inside it; a future given directly is still
    resolved to its result."""


class NotSet:
    """Tells "not given" apart from ``None``."""
