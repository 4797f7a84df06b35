"""Errors raised by the store.

StoreError                 the database cannot be opened, migrated or written
├── RunNotFoundError       no run matches an id or id prefix (also a LookupError)
└── AmbiguousRunIdError    an id prefix matches several runs (also a LookupError)
"""

from __future__ import annotations

__all__ = ["AmbiguousRunIdError", "RunNotFoundError", "StoreError"]


class StoreError(Exception):
    """The run record cannot be opened, migrated or written."""


class RunNotFoundError(StoreError, LookupError):
    """No run matches the given id or prefix."""


class AmbiguousRunIdError(StoreError, LookupError):
    """An id prefix matches more than one run."""
