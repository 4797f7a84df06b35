"""Prefect's `prefect.concurrency.sync` path: `concurrency` and `rate_limit` for sync code."""

from fluvial.concurrency._api import concurrency, rate_limit

__all__ = ["concurrency", "rate_limit"]
