"""Every exception fluvial raises on purpose, in one place.

The tree::

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
    │   └── SerializationFailure      (also TypeError)  an argument or result could not be pickled
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
    ├── SettingsError                 (also ValueError) a ``FLUVIAL_*`` variable is invalid
    └── StoreError                                       the run record cannot be opened or written
        ├── RunNotFoundError          (also LookupError) no run matches an id or id prefix
        └── AmbiguousRunIdError       (also LookupError) an id prefix matches several runs

Warnings: ``InsecureHomeWarning`` (a ``UserWarning``): FLUVIAL_HOME can be written by
other users.

Backend errors are translated where they enter fluvial and re-raised ``from`` the
original, so a worker's traceback stays reachable as ``__cause__``.
"""

from __future__ import annotations


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


class SerializationFailure(TaskError, TypeError):
    """An argument or a return value could not be serialized for a remote runner."""


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


class RemoteTraceback(Exception):
    """Carries the formatted traceback of an exception raised in another process."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class InsecureHomeWarning(UserWarning):
    """``FLUVIAL_HOME`` exists and users other than its owner may write to it."""
