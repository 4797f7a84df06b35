"""A flow's parameters as a deployment keeps them: a JSON schema, and checks of given values.

The schema (kept for forms and for checking runs made without the flow's code)
is pydantic's JSON schema of the flow's signature; a parameter without a type
hint accepts anything. Values given at deploy time are checked against the
flow itself (unknown names, and types through the flow's own validation);
values given for a run are checked against the stored schema: unknown names
and missing required ones are refused before a run is created, and the flow's
process validates types again when it starts.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluvial.flows import Flow

__all__ = ["check_run_parameters", "parameter_schema", "validate_deploy_parameters"]


def parameter_schema(flow: Flow) -> dict[str, Any]:
    """The JSON schema of ``flow``'s parameters (``{"type": "object", "properties": ...}``)."""
    from pydantic import ConfigDict, create_model

    signature = inspect.signature(flow.fn)
    try:
        import typing

        hints = typing.get_type_hints(flow.fn)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    model = create_model(  # type: ignore[call-overload]
        "Parameters", __config__=ConfigDict(arbitrary_types_allowed=True), **fields
    )
    try:
        schema = model.model_json_schema()
    except Exception:  # a type pydantic cannot describe: names and required ones only
        schema = {
            "type": "object",
            "properties": {name: {"title": name} for name in fields},
            "required": [n for n, (_, d) in fields.items() if d is ...],
        }
    schema.setdefault("required", [])
    schema["title"] = "Parameters"
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        schema["additionalProperties"] = True
    return _jsonable(schema)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def validate_deploy_parameters(flow: Flow, parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` checked against ``flow``: unknown names and bad types are errors.

    Required parameters may be left out here; a run must then give them.
    """
    from fluvial.exceptions import ParameterTypeError

    signature = inspect.signature(flow.fn)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in parameters if k not in signature.parameters]
    if unknown and not accepts_any:
        raise ParameterTypeError(
            f"flow {flow.name!r} has no parameter(s) {sorted(unknown)}; "
            f"its parameters: {list(signature.parameters)}"
        )
    if flow.validate_parameters and parameters:
        flow.validator.validate(dict(parameters))  # raises naming the parameter
    try:
        json.dumps(parameters)
    except (TypeError, ValueError) as exc:
        raise ParameterTypeError(
            f"flow {flow.name!r}: deployment parameters must be JSON values: {exc}"
        ) from None
    return dict(parameters)


def check_run_parameters(
    where: str, schema: dict[str, Any] | None, defaults: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    """The parameters of a new run: ``defaults`` updated with ``given``, checked by names."""
    from fluvial.exceptions import ParameterTypeError

    merged = {**defaults, **given}
    if not schema:
        return merged
    properties = schema.get("properties", {})
    if not schema.get("additionalProperties"):
        unknown = sorted(k for k in given if k not in properties)
        if unknown:
            raise ParameterTypeError(
                f"{where}: unknown parameter(s) {unknown}; parameters: {list(properties)}"
            )
    missing = [k for k in schema.get("required", []) if k not in merged]
    if missing:
        raise ParameterTypeError(f"{where}: missing required parameter(s) {missing}")
    for name, value in given.items():
        if name in properties and not _fits(value, properties[name]):
            raise ParameterTypeError(
                f"{where}: parameter {name!r} must be {_describe(properties[name])}, "
                f"got {value!r}")
    try:
        json.dumps(merged)
    except (TypeError, ValueError) as exc:
        raise ParameterTypeError(f"{where}: parameters must be JSON values: {exc}") from None
    return merged


_PYTHON_TYPES: dict[str, type] = {"integer": int, "number": float, "boolean": bool, "string": str,
                                  "array": list, "object": dict}


def _fits(value: Any, prop: dict[str, Any]) -> bool:
    """Whether ``value`` is what the schema property asks for, in pydantic's lax mode (so
    ``"3"`` fits an integer, as the flow will coerce it). Unknown shapes fit."""
    if "anyOf" in prop:
        return any(_fits(value, option) for option in prop["anyOf"])
    kind = prop.get("type")
    if kind == "null":
        return value is None
    python_type = _PYTHON_TYPES.get(kind) if isinstance(kind, str) else None
    if python_type is None:
        return True
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(python_type).validate_python(value)
    except ValidationError:
        return False
    return True


def _describe(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_describe(option) for option in prop["anyOf"])
    return str(prop.get("type", "a value"))
