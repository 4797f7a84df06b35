"""Futures: the eventual states of submitted task runs, and waiting on many of them."""

from fluvial.futures._base import (
    DoneAndNotDoneFutures,
    Future,
    FutureList,
    PrefectFuture,
    PrefectFutureList,
    as_completed,
    resolve_futures_to_results,
    resolve_futures_to_states,
    wait,
)

__all__ = ["DoneAndNotDoneFutures", "Future", "FutureList", "PrefectFuture", "PrefectFutureList",
           "as_completed", "resolve_futures_to_results", "resolve_futures_to_states", "wait"]
