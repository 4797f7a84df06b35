"""Starting a local Ray instance that listens on the loopback interface only.

``RayTaskRunner()`` with no address starts Ray on this machine, as Dask's
``LocalCluster`` started by fluvial does; like it, the instance is reachable from this
machine only. Ray turns a loopback ``_node_ip_address`` into the host's address unless
clusters are disabled (``ray_constants.ENABLE_RAY_CLUSTER``, what Ray does itself on
macOS and Windows), so the flag is cleared while ``ray.init`` starts the node: the GCS,
the raylet, the workers and the runtime-env agent then bind 127.0.0.1.

A cluster the user names — ``address=``, ``RAY_ADDRESS``, an instance started with
``ray start`` that ``ray.init()`` joins, or a ``_node_ip_address`` in ``init_kwargs`` —
is left as configured.

``ray.init`` installs a Python SIGTERM handler in the driver (it calls ``sys.exit``). A
child forked from the driver afterwards (a task's ``multiprocessing`` pool with the
``fork`` method) would inherit it, and then end on SIGTERM by running Python cleanup,
which can block forever on a lock another driver thread held at the fork (stderr's
buffer): ``Pool.terminate()`` then hangs. Forked children get the default SIGTERM back.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

__all__ = ["LOOPBACK", "init_ray", "starts_local_instance"]

LOOPBACK = "127.0.0.1"

logger = logging.getLogger("fluvial.runners.ray")


def starts_local_instance(address: str | None, init_kwargs: dict[str, Any]) -> bool:
    """True when ``ray.init(address=address, **init_kwargs)`` would start a new local
    instance that fluvial may configure (no address, none in the environment, no running
    ``ray start`` instance, no node address chosen by the user)."""
    if address is not None or "_node_ip_address" in init_kwargs:
        return False
    try:
        from ray._private import services

        canonicalize: Any = services.canonicalize_bootstrap_address
        return canonicalize(None, init_kwargs.get("_temp_dir")) is None
    except Exception:  # noqa: BLE001 - a Ray without this helper: decide from the env only
        import os

        return not os.environ.get("RAY_ADDRESS")


def _default_sigterm_in_forked_child() -> None:
    """In a child forked from a Ray driver: SIGTERM ends it at once, as for any process."""
    try:
        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler) and getattr(handler, "__module__", "").startswith("ray."):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main thread: leave it
        pass


_fork_hook_installed = False


def init_ray(ray: Any, address: str | None, init_kwargs: dict[str, Any]) -> None:
    """``ray.init``; a local instance it starts listens on the loopback interface only."""
    global _fork_hook_installed
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_default_sigterm_in_forked_child)
        _fork_hook_installed = True
    if not starts_local_instance(address, init_kwargs):
        ray.init(address=address, **init_kwargs)
        return
    ray_constants: Any
    try:
        from ray._private import ray_constants
    except ImportError:  # pragma: no cover - layout of another Ray version
        ray_constants = None
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if ray_constants is not None and saved is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address=None, _node_ip_address=LOOPBACK, **init_kwargs)
    finally:
        if ray_constants is not None and saved is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved
