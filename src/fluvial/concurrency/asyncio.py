"""Prefect's `prefect.concurrency.asyncio` path: `async with concurrency(...)`, `await rate_limit(...)`."""

from fluvial.concurrency._api import arate_limit as rate_limit
from fluvial.concurrency._api import concurrency

__all__ = ["concurrency", "rate_limit"]
