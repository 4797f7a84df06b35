"""Validating and coercing a flow's arguments by its type hints, before anything runs.

Arguments are bound to the signature, then, when the function has annotations, checked
and coerced by a pydantic model built once per flow (``"41"`` for ``n: int`` becomes
``41``). pydantic is imported on first use, so flows without hints never pay for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fluvial.exceptions import ParameterTypeError

__all__ = ["ParameterValidator"]


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

    def bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterTypeError(f"{self.owner}: {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

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
