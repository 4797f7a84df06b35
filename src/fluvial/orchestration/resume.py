"""Re-running a failed flow run: what ``fluvial runs retry`` needs.

When the run record is on, a flow run leaves ``$FLUVIAL_HOME/runs/<id>.pkl`` behind: the
file and name of its flow, its parameters (cloudpickle) and its *lineage* — the id of
the first run in a chain of retries. Task runs with ``persist_result=True`` store their
result under a key made of the lineage, the task and its inputs
(``fluvial.worker.caching.persist_key``), so a retry of the run
(same lineage) finds the results of the task runs that completed and ends them
``Cached`` instead of computing them again; everything else runs.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle

from fluvial._files import private_dir

if TYPE_CHECKING:
    from fluvial.protocols import FlowSpec
    from fluvial.runs import FlowRun

__all__ = ["RunInputs", "load_run_inputs", "resuming", "save_run_inputs"]

_resume_lineage: ContextVar[uuid.UUID | None] = ContextVar("fluvial_resume_lineage",
                                                           default=None)


@dataclass(frozen=True)
class RunInputs:
    flow_run_id: uuid.UUID
    lineage_id: uuid.UUID
    source_file: str | None
    function_name: str
    flow_name: str
    parameters: dict[str, Any]
    module_name: str | None = None  # the flow's module, ``__main__`` resolved (older runs: None)


def _runs_dir() -> Path:
    from fluvial import settings

    return settings.home() / "runs"


def current_lineage() -> uuid.UUID | None:
    return _resume_lineage.get()


@contextlib.contextmanager
def resuming(lineage_id: uuid.UUID) -> Iterator[None]:
    """Flow runs started inside the block continue the lineage ``lineage_id``."""
    token = _resume_lineage.set(lineage_id)
    try:
        yield
    finally:
        _resume_lineage.reset(token)


def save_run_inputs(flow: FlowSpec, flow_run: FlowRun) -> None:
    """Leave what a later ``fluvial runs retry`` needs; failures only cost the retry."""
    from fluvial.serialization import module_identity

    try:
        source = inspect.getsourcefile(flow.fn)
    except TypeError:
        source = None
    record = {
        "flow_run_id": flow_run.id, "lineage_id": flow_run.lineage_id,
        "source_file": os.path.abspath(source) if source else None,
        "function_name": flow.fn.__name__, "flow_name": flow.name,
        "parameters": flow_run.parameters,
        "module_name": module_identity(getattr(flow.fn, "__module__", None)),
    }
    directory = _runs_dir()
    try:
        payload = cloudpickle.dumps(record)
        private_dir(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, directory / f"{flow_run.id}.pkl")
    except Exception as exc:  # unpicklable parameters, read-only home ...
        import logging

        logging.getLogger("fluvial.store").debug("run inputs not saved: %s", exc)


def load_run_inputs(flow_run_id: uuid.UUID) -> RunInputs:
    path = _runs_dir() / f"{flow_run_id}.pkl"
    """What ``runs retry`` needs of a run. ``LookupError`` if the run left no inputs file,
    ``ValueError`` naming the file if it cannot be read back (truncated, corrupt, or
    written by an incompatible version)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LookupError(f"flow run {flow_run_id} left no inputs to retry with ({path} is "
                          "missing: was it run with FLUVIAL_STORE=off?)") from None
    try:
        record = cloudpickle.loads(data)
        return RunInputs(**record)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{path}: the inputs of flow run {flow_run_id} cannot be read "
                         f"({type(exc).__name__}: {exc})") from exc
