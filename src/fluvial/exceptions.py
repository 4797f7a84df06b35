"""Every exception (and warning) fluvial raises on purpose, in one place.

Modules that raise one may re-export it (``fluvial.concurrency.ConcurrencySlotTimeout``,
``fluvial.serialization.SerializationError``, ``fluvial.store.StoreError``, ...);
the class lives here. ``tests/test_exceptions.py`` checks that every exception
class defined anywhere in fluvial is in this tree. The tree::

    FluvialError
    ├── FlowError
    │   ├── ParameterTypeError        (also ValueError) flow arguments fail validation
    │   │   └── ParameterBindError    (also TypeError)  flow arguments do not bind to the signature
    │   └── SignatureMismatchError    (also TypeError)  parameters name what the function lacks
    ├── InvalidNameError              (also ValueError) a flow name with a banned character
    ├── ReservedArgumentError         (also TypeError)  a task parameter named ``wait_for``
    ├── TaskError
    │   ├── MappingLengthMismatch     (also ValueError) ``.map`` iterables differ in length
    │   ├── MappingTypeError          (also TypeError)  ``.map`` got no iterable argument at all
    │   ├── UpstreamTaskError                            an upstream task failed; this one did not run
    │   ├── TaskTimeoutError          (also TimeoutError) a task run passed its ``timeout_seconds``
    │   ├── CrashedRun                                   the worker running a task died
    │   ├── SerializationFailure      (also SerializationError) a task run's argument or result
    │   │                                                could not be pickled for a remote runner
    │   └── TaskRunFailure                               (on a Dask worker) a run ended not
    │                                                    completed; carries its final state
    ├── FlowTimeoutError              (also TimeoutError) a flow run passed its ``timeout_seconds``
    ├── FlowPauseTimeout              (also TimeoutError) a paused flow run was not resumed in time
    ├── NotPausedError                (also RuntimeError) resuming a flow run that is not paused
    ├── DeploymentError
    │   ├── DeploymentNotFound        (also LookupError) no deployment of that name
    │   ├── EntrypointError           (also ValueError)  an entrypoint names no flow in a file
    │   └── ProjectError              (also ValueError)  a fluvial.yaml that cannot be deployed
    ├── FailedRun                                        a failed state that carries no exception
    ├── MissingContextError           (also RuntimeError) a run-only API was used outside a run
    ├── RunnerError                   (also RuntimeError) a task runner is misused or unreachable
    ├── MissingDependencyError        (also ImportError) an optional extra is not installed
    ├── BlockError                                       a block cannot be saved or loaded
    │   ├── BlockNotFoundError        (also LookupError) no block (or block type) by that name
    │   └── EncryptionKeyError                           the key for secret fields is missing or wrong
    ├── ConcurrencySlotTimeout        (also TimeoutError) slots not granted within ``timeout``
    ├── SerializationError            (also TypeError)  a serializer cannot encode an object
    │   └── SerializationFailure      (see TaskError above: the same failure, for a task run)
    ├── HashError                     (also TypeError)  an input cannot be hashed into a cache key
    ├── ResultRecordError                                a stored result is missing or corrupt
    ├── FlowVisualizationError        (also RuntimeError) a flow cannot be traced for a graph
    ├── AutomationNotFound            (also LookupError) no automation by that id or name
    ├── InsecureBind                  (also RuntimeError) the server would listen beyond this
    │                                                    machine without a token
    ├── SettingsError                 (also ValueError) a ``FLUVIAL_*`` variable is invalid
    ├── StoreError                                       the run record cannot be opened or written
    │   ├── RunNotFoundError          (also LookupError) no run matches an id or id prefix
    │   ├── AmbiguousRunIdError       (also LookupError) an id prefix matches several runs
    │   ├── WireError                                    the pipe to the store's writer process broke
    │   └── ApiError                                     the server at FLUVIAL_API_URL cannot be
    │                                                    reached or refused a request
    ├── ApiAuthError                  (also PermissionError) that server refused the token
    └── RemoteTraceback                                  the ``__cause__`` carrying a traceback
                                                         formatted in another process

``SerializationError`` is what a serializer raises for any object;
``SerializationFailure`` is the task-run error a runner raises when a task's argument
or result cannot cross to or from a worker: it is both a ``TaskError`` and a
``SerializationError``, so either ``except`` catches it.

Warnings::

    UserWarning
    └── FluvialWarning                                   every warning fluvial issues
        ├── InsecureHomeWarning                          FLUVIAL_HOME is writable by other users
        ├── CacheKeyWarning                              a task's cache key cannot be computed
        └── FluvialDeprecationWarning (also DeprecationWarning) a name kept for compatibility

(The test suite turns every ``FluvialWarning`` into an error: ``filterwarnings`` in
pyproject.toml.) One signal is deliberately outside the tree: a worker's flow-run
process stops on SIGTERM with ``fluvial.workers._flow_process.Terminated``, a
``BaseException`` like ``KeyboardInterrupt``, so that user code catching
``Exception`` cannot swallow it.

Backend errors are translated where they enter fluvial and re-raised ``from`` the
original, so a worker's traceback stays reachable as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class FluvialError(Exception):
    """Base class of every error fluvial raises on purpose."""


class FlowError(FluvialError):
    """Something is wrong with a flow or a flow run."""


class ParameterTypeError(FlowError, ValueError):
    """A flow's arguments do not match its signature or type hints."""


class ParameterBindError(ParameterTypeError, TypeError):
    """A flow's arguments do not bind to its signature (as Prefect's, a ``TypeError``)."""

    @classmethod
    def from_bind_failure(cls, fn: object, exc: TypeError, call_args: tuple,
                          call_kwargs: dict) -> ParameterBindError:
        import inspect

        name = getattr(fn, "__name__", repr(fn))
        try:
            signature = str(inspect.signature(fn))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            signature = "(...)"
        return cls(f"Error binding parameters for function {name!r}: {exc}.\n"
                   f"Function {name!r} has signature {signature!r} but received args: "
                   f"{call_args} and kwargs: {list(call_kwargs)}.")


class SignatureMismatchError(FlowError, TypeError):
    """Parameters given by name include one the function does not take."""

    @classmethod
    def from_bad_params(cls, expected_params: list[str],
                        provided_params: list[str]) -> SignatureMismatchError:
        return cls(f"Function expects parameters {expected_params} but was provided with "
                   f"parameters {provided_params}")


class InvalidNameError(FluvialError, ValueError):
    """A name contains a character Prefect bans (``/ % & > <``)."""


class ReservedArgumentError(FluvialError, TypeError):
    """A function parameter uses a name the call itself takes (``wait_for``)."""


class TaskError(FluvialError):
    """Something is wrong with a task or a task run."""


class MappingLengthMismatch(TaskError, ValueError):
    """The iterables given to ``Task.map`` have different lengths."""


class MappingTypeError(TaskError, TypeError):
    """``Task.map`` got no argument to map over (every one is static)."""


class UpstreamTaskError(TaskError):
    """A task did not run because a task it depends on did not complete."""


class TaskTimeoutError(TaskError, TimeoutError):
    """A task run exceeded its ``timeout_seconds``."""


class FlowTimeoutError(FlowError, TimeoutError):
    """A flow run exceeded its ``timeout_seconds``."""


class FlowPauseTimeout(FlowError, TimeoutError):
    """A paused flow run was not resumed within its timeout."""


class NotPausedError(FluvialError, RuntimeError):
    """``resume_flow_run`` on a flow run that is not paused."""


class DeploymentError(FluvialError):
    """Something is wrong with a deployment."""


class DeploymentNotFound(DeploymentError, LookupError):
    """No deployment of that flow name and deployment name (or id)."""

    def __str__(self) -> str:  # a LookupError would show its message quoted
        return str(self.args[0]) if self.args else ""


class EntrypointError(DeploymentError, ValueError):
    """An entrypoint (``path.py:flow``) that does not name a flow in a file."""


class ProjectError(DeploymentError, ValueError):
    """A ``fluvial.yaml`` that cannot be deployed."""


class CrashedRun(TaskError):
    """The process or worker running a task died before reporting a result."""


class SerializationError(FluvialError, TypeError):
    """An object cannot be encoded by the chosen serializer."""


class SerializationFailure(TaskError, SerializationError):
    """An argument or a return value of a task run could not be serialized for a remote runner."""


class TaskRunFailure(TaskError):
    """Raised on a worker to tell the backend a run did not complete; carries its state."""

    def __init__(self, state: Any, task_name: str, task_run_id: Any) -> None:
        super().__init__(state, task_name, task_run_id)
        self.state = state
        self.task_name = task_name
        self.task_run_id = task_run_id

    def __str__(self) -> str:
        return f"task {self.task_name!r} ended {self.state.name}: {self.state.message}"


class HashError(FluvialError, TypeError):
    """An object (or a task parameter) cannot be turned into a stable hash."""


class ResultRecordError(FluvialError):
    """A result record cannot be read: missing, truncated, corrupted or undecodable.

    ``path`` is the record's file and ``reason`` says what is wrong with it.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(path, reason)  # args kept so the error pickles across processes
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"result record '{self.path}' {self.reason}"


class ConcurrencySlotTimeout(FluvialError, TimeoutError):
    """Slots were not granted within `timeout` seconds; `names` are the limits waited on."""

    def __init__(self, names: Sequence[str], occupy: int, timeout: float) -> None:
        self.names = tuple(names)
        self.occupy = occupy
        self.timeout = timeout
        shown = ", ".join(repr(n) for n in self.names)
        super().__init__(
            f"timed out after {timeout:g}s waiting for {occupy} slot(s) of concurrency limit(s) {shown}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.names, self.occupy, self.timeout))


class FlowVisualizationError(FluvialError, RuntimeError):
    """The flow function could not be traced with placeholders for its task results."""


class FailedRun(FluvialError):
    """Raised for a failed state that carries no exception of its own."""


class MissingContextError(FluvialError, RuntimeError):
    """A run-only API (``get_run_logger``, ``get_run_context`` ...) was used outside a run."""


class RunnerError(FluvialError, RuntimeError):
    """A task runner is used after shutdown, before start, or cannot reach its backend."""


class MissingDependencyError(FluvialError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


class BlockError(FluvialError):
    """A block cannot be saved, loaded or built from what is stored."""


class BlockNotFoundError(BlockError, LookupError):
    """No block document, or no block type, by the given name."""


class EncryptionKeyError(BlockError):
    """The key that encrypts secret block fields is missing, malformed or not the one used."""


class AutomationNotFound(FluvialError, LookupError):
    """No automation by that id or name."""


class InsecureBind(FluvialError, RuntimeError):
    """The server would listen beyond this machine without a token."""


class SettingsError(FluvialError, ValueError):
    """A ``FLUVIAL_*`` environment variable has an invalid value (the message names it)."""


class StoreError(FluvialError):
    """The run record cannot be opened, migrated or written.

    Its text never shows a password: database URLs and ``password=`` values in the
    message are redacted when it is raised (:func:`fluvial._redact.redact_text`)."""

    def __init__(self, *args: object) -> None:
        from fluvial._redact import redact_text

        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))


class RunNotFoundError(StoreError, LookupError):
    """No run matches the given id or prefix."""


class AmbiguousRunIdError(StoreError, LookupError):
    """An id prefix matches more than one run."""


class WireError(StoreError):
    """The pipe to the store's writer process is broken: a truncated or oversized frame."""


class ApiError(StoreError):
    """The fluvial server at ``FLUVIAL_API_URL`` cannot be reached or refused a request.

    ``status`` is the HTTP status of the refusal, None when there was no answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiAuthError(FluvialError, PermissionError):
    """The fluvial server at ``FLUVIAL_API_URL`` refused the token (``FLUVIAL_API_TOKEN``).

    Not a :class:`StoreError`: a flow run does not go ahead unrecorded when the record's
    server says its token is wrong; the message never shows the token."""


class RemoteTraceback(FluvialError):
    """Carries the formatted traceback of an exception raised in another process."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class FluvialWarning(UserWarning):
    """Base class of every warning fluvial issues."""


class FluvialDeprecationWarning(FluvialWarning, DeprecationWarning):
    """A name or an argument kept for compatibility; the message says what replaces it."""


class CacheKeyWarning(FluvialWarning):
    """A task's cache key cannot be computed: the run goes ahead without the cache."""


class InsecureHomeWarning(FluvialWarning):
    """``FLUVIAL_HOME`` exists and users other than its owner may write to it."""
