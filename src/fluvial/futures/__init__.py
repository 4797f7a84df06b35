"""Futures: the eventual states of submitted task runs, and waiting on many of them."""

from fluvial.futures._base import (
    DoneAndNotDoneFutures,
    Future,
    FutureList,
    PrefectFuture,
    as_completed,
    wait,
)

__all__ = ["DoneAndNotDoneFutures", "Future", "FutureList", "PrefectFuture", "as_completed", "wait"]
