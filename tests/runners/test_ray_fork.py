"""A child forked from a Ray driver (a task's ``multiprocessing`` pool, ``fork`` method)
ends on SIGTERM at once: ``ray.init`` put a Python SIGTERM handler in the driver, and a
forked child that ran it (Python cleanup) could block on a lock another driver thread
held at the fork, so ``Pool.terminate()`` hung."""

from __future__ import annotations

import multiprocessing
import signal

import pytest


def _sigterm_disposition(_: object) -> str:
    handler = signal.getsignal(signal.SIGTERM)
    return "default" if handler == signal.SIG_DFL else repr(handler)


def test_a_child_forked_from_a_ray_driver_has_the_default_sigterm(ray_session) -> None:
    driver_handler = signal.getsignal(signal.SIGTERM)
    if not callable(driver_handler) or not driver_handler.__module__.startswith("ray."):
        pytest.fail(f"expected ray.init to have installed its SIGTERM handler, "
                    f"found {driver_handler!r}")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_sigterm_disposition, [0]) == ["default"]
    assert signal.getsignal(signal.SIGTERM) is driver_handler  # the driver keeps Ray's
