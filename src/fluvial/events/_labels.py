"""Resource labels and event names: Prefect's ``prefect.*`` spelling accepted as ``fluvial.*``.

A resource is a flat dict of string labels with at least ``fluvial.resource.id``;
related resources also carry ``fluvial.resource.role``. Users may write Prefect's
names (``prefect.resource.id``, ``prefect.flow-run.Completed``): they are
canonicalised here, once, so everything stored and matched uses ``fluvial.``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PREFECT", "canonical_label", "canonical_name", "resource_labels"]

RESOURCE_ID = "fluvial.resource.id"
RESOURCE_ROLE = "fluvial.resource.role"


PREFECT = "prefect."  # Prefect's prefix of labels and event names, read as "fluvial."


def canonical_label(key: str) -> str:
    return "fluvial." + key[len(PREFECT):] if key.startswith(PREFECT) else key


def canonical_name(name: str) -> str:
    """An event name (or a pattern of one) with a ``prefect.`` prefix read as ``fluvial.``."""
    return canonical_label(name)


def resource_labels(value: Any, what: str, role: bool = False) -> dict[str, str]:
    """``value`` as a resource's labels, checked; ``what`` names it in errors."""
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict of labels, got {type(value).__name__}")
    labels: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"{what}: labels must map strings to strings, got {key!r}: {item!r}")
        # (the prefix tested here, so that the common label costs no call)
        if key.startswith(PREFECT):
            key = canonical_label(key)
        if item.startswith(PREFECT) and key.endswith(".id"):
            item = canonical_name(item)
        labels[key] = item
    if not labels.get(RESOURCE_ID):
        raise ValueError(f"{what} needs a 'fluvial.resource.id' (or 'prefect.resource.id') label")
    if role and not labels.get(RESOURCE_ROLE):
        raise ValueError(f"{what} needs a 'fluvial.resource.role' label")
    return labels
