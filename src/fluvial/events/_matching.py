"""Prefect's matching rules for event names and resource labels.

* An event name pattern is exact, or ends in ``*`` for a prefix (``fluvial.flow-run.*``).
* A label spec maps a label to a value or a list of values (any may match); a value
  ``*`` matches any value, ``prefix*`` a prefix, and ``!value`` (or ``!prefix*``) means the
  label must not match. Label names and ``.id`` values written with ``prefect.`` are read
  as ``fluvial.``.
* A related spec (a dict, or a list of dicts) is met when, for each dict, one related
  resource matches all of its labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fluvial.events._labels import canonical_label, canonical_name

__all__ = ["labels_match", "name_matches", "normalize_spec", "related_match"]


def name_matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _value_matches(expected: str, actual: str | None) -> bool:
    if expected.startswith("!"):
        return actual is None or not _value_matches(expected[1:], actual)
    if actual is None:
        return False
    if expected == "*":
        return True
    if expected.endswith("*"):
        return actual.startswith(expected[:-1])
    return actual == expected


def normalize_spec(spec: Mapping[str, Any], what: str) -> dict[str, list[str]]:
    """A label spec with canonical names and every value a list of strings."""
    out: dict[str, list[str]] = {}
    for key, value in spec.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(key, str) or not isinstance(values, list | tuple) or not all(
                isinstance(v, str) for v in values):
            raise ValueError(f"{what}: {key!r} must map to a string or a list of strings")
        label = canonical_label(key)
        out[label] = [canonical_name(v) if label.endswith(".id") else v for v in values]
    return out


def labels_match(spec: Mapping[str, Sequence[str]], labels: Mapping[str, str]) -> bool:
    for key, values in spec.items():
        actual = labels.get(key)
        positive = [v for v in values if not v.startswith("!")]
        negative = [v for v in values if v.startswith("!")]
        if positive and not any(_value_matches(v, actual) for v in positive):
            return False
        if not all(_value_matches(v, actual) for v in negative):
            return False
    return True


def related_match(specs: Iterable[Mapping[str, Sequence[str]]],
                  related: Sequence[Mapping[str, str]]) -> bool:
    return all(any(labels_match(spec, r) for r in related) for spec in specs)
