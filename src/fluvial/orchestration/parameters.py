"""Validating and coercing a flow's arguments by its type hints, before anything runs.

Arguments are bound to the signature, then, when the function has annotations, checked
and coerced by a pydantic model built once per flow (``"41"`` for ``n: int`` becomes
``41``). pydantic is imported on first use, so flows without hints never pay for it.

A flow on a method is bound to its instance (or class): ``self``/``cls`` goes in front
of the call's arguments when binding and calling, and is left out of the parameters.
``to_call`` turns parameters back into ``(args, kwargs)``, so ``*args`` and ``**kwargs``
reach the function as they were given, not nested under their names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fluvial.exceptions import ParameterBindError, ParameterTypeError, SignatureMismatchError

__all__ = ["UNBOUND", "ParameterValidator", "call_arguments", "parameters_to_args_kwargs"]

UNBOUND: Any = object()  # a flow not bound to an instance or class


def parameters_to_args_kwargs(fn: Callable[..., Any],
                              parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` that call ``fn`` with ``parameters`` (bound arguments by name,
    ``*args``/``**kwargs`` under their own names); ``SignatureMismatchError`` for a name
    the function does not take."""
    return _to_call(inspect.signature(fn), parameters)


def call_arguments(fn: Callable[..., Any],
                   parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` to call ``fn`` again with recorded or stored ``parameters``: as
    ``parameters_to_args_kwargs``, but a name the signature lacks is passed as a keyword
    (for a function with ``**kwargs``, or to get the usual binding error)."""
    signature = inspect.signature(fn)
    known = {k: v for k, v in parameters.items() if k in signature.parameters}
    args, kwargs = _to_call(signature, known)
    kwargs.update((k, v) for k, v in parameters.items() if k not in known)
    return args, kwargs


def _to_call(signature: inspect.Signature,
             parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    unknown = parameters.keys() - signature.parameters.keys()
    if unknown:
        raise SignatureMismatchError.from_bad_params(list(signature.parameters),
                                                     list(parameters))
    bound = signature.bind_partial()
    bound.arguments = dict(parameters)  # type: ignore[assignment]
    return bound.args, bound.kwargs


class ParameterValidator:
    def __init__(self, fn: Callable[..., Any], owner: str) -> None:
        self.fn = fn
        self.owner = owner
        self.signature = inspect.signature(fn)
        self._model: Any = None
        self._annotated = [
            name for name, p in self.signature.parameters.items()
            if p.annotation is not inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def bind(self, args: tuple, kwargs: dict, bound_to: Any = UNBOUND) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied (without ``self``/``cls``
        when the flow is bound to ``bound_to``)."""
        if bound_to is not UNBOUND:
            args = (bound_to, *args)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            error = ParameterBindError.from_bind_failure(self.fn, exc, args, kwargs)
            raise ParameterBindError(f"{self.owner}: {error}") from None
        bound.apply_defaults()
        parameters = dict(bound.arguments)
        if bound_to is not UNBOUND:
            parameters.pop(next(iter(self.signature.parameters)))
        return parameters

    def to_call(self, parameters: dict[str, Any],
                bound_to: Any = UNBOUND) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` to call the function with ``parameters``."""
        if bound_to is not UNBOUND:
            parameters = {next(iter(self.signature.parameters)): bound_to, **parameters}
        return _to_call(self.signature, parameters)

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Coerce ``parameters`` by the annotations; raise ``ParameterTypeError`` naming
        the parameter that does not fit."""
        if not self._annotated:
            return parameters
        model = self._model or self._build_model()
        from pydantic import ValidationError

        subset = {k: parameters[k] for k in self._annotated if k in parameters}
        try:
            validated = model.model_validate(subset)
        except ValidationError as exc:
            problems = "; ".join(
                f"parameter {'.'.join(str(p) for p in err['loc'])!r}: {err['msg']} "
                f"(got {err.get('input')!r})"
                for err in exc.errors()
            )
            raise ParameterTypeError(f"{self.owner}: invalid arguments: {problems}") from None
        out = dict(parameters)
        for name in subset:
            out[name] = getattr(validated, name)
        return out

    def _build_model(self) -> Any:
        from pydantic import ConfigDict, create_model

        fields: dict[str, Any] = {}
        hints = _type_hints(self.fn)
        for name in self._annotated:
            param = self.signature.parameters[name]
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[name] = (hints.get(name, param.annotation), default)
        self._model = create_model(  # type: ignore[call-overload]
            f"{self.owner}_parameters".replace(" ", "_").replace("'", ""),
            __config__=ConfigDict(arbitrary_types_allowed=True),
            **fields,
        )
        return self._model


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}
