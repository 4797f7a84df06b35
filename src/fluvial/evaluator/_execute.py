"""Running an automation's actions for a firing: templates rendered, then the action done.

Templates are Jinja, rendered in a sandbox. A firing's actions run at least once (a
firing whose evaluator died is run again); ``RunDeployment`` passes the firing's key
as the run's idempotency key, so a firing run twice never makes a second run.
"""

from __future__ import annotations

from typing import Any

from fluvial.automations._actions import (
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    PauseDeployment,
    ResumeDeployment,
    RunDeployment,
    SendNotification,
)

__all__ = ["execute", "render", "template_context"]


# ---------------------------------------------------------------------------- templating


class _Labels(dict):  # type: ignore[type-arg]
    """A resource's labels, with ``.id``, ``.name`` and ``.role`` for templates."""

    def __getattr__(self, name: str) -> Any:
        key = f"fluvial.resource.{name}"
        if key in self:
            return self[key]
        if name in self:
            return self[name]
        raise AttributeError(name)


def template_context(event: Any, automation: Any) -> dict[str, Any]:
    from types import SimpleNamespace

    return {
        "event": SimpleNamespace(
            id=event.id, event=event.event, occurred=event.occurred, received=event.received,
            resource=_Labels(event.resource), related=[_Labels(r) for r in event.related],
            payload=event.payload),
        "automation": SimpleNamespace(id=automation.id, name=automation.name),
    }


def render(value: Any, context: dict[str, Any]) -> Any:
    """``value`` with every string that holds ``{{`` rendered; dicts and lists walked."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        from jinja2.sandbox import SandboxedEnvironment

        return SandboxedEnvironment(autoescape=False).from_string(value).render(**context)
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


# ---------------------------------------------------------------------------- running


def _flow_run_of(event: Any) -> str:
    resource_id = event.resource.get("fluvial.resource.id", "")
    if resource_id.startswith("fluvial.flow-run."):
        return resource_id[len("fluvial.flow-run."):]
    for related in event.related:
        rid = related.get("fluvial.resource.id", "")
        if rid.startswith("fluvial.flow-run."):
            return rid[len("fluvial.flow-run."):]
    raise ValueError(f"event {event.event!r} is not about a flow run: nothing to act on")


def execute(action: Any, event: Any, automation: Any, firing_key: str) -> str:
    """Run one action for a firing; a short description of what was done."""
    context = template_context(event, automation)
    if isinstance(action, RunDeployment):
        from fluvial.deployments import run_deployment

        run = run_deployment(action.deployment_id, parameters=render(action.parameters or {},
                                                                     context),
                             timeout=0, idempotency_key=f"automation:{firing_key}",
                             as_subflow=False)
        return f"flow run {run.id}"
    if isinstance(action, PauseDeployment | ResumeDeployment):
        from fluvial.deployments._records import set_paused

        set_paused(action.deployment_id, isinstance(action, PauseDeployment))
        return f"deployment {action.deployment_id} {'paused' if isinstance(action, PauseDeployment) else 'resumed'}"
    if isinstance(action, CancelFlowRun):
        from fluvial.flow_runs import cancel_flow_run

        run_id = _flow_run_of(event)
        return f"flow run {run_id}: {cancel_flow_run(run_id, wait=False)}"
    if isinstance(action, ChangeFlowRunState):
        from fluvial.deployments._records import connection, set_state
        from fluvial.store.connection import transaction

        run_id = _flow_run_of(event)
        with connection() as conn, transaction(conn):
            set_state(conn, run_id, action.state, action.name or action.state.title(),
                      render(action.message, context))
        return f"flow run {run_id} -> {action.state}"
    if isinstance(action, CallWebhook | SendNotification):
        from fluvial.blocks.core import Block
        from fluvial.blocks.webhook import Webhook

        ref = action.block_document_id
        block = Block.load(ref if "/" in ref else f"webhook/{ref}")
        if not isinstance(block, Webhook):
            raise TypeError(f"{ref!r} is not a webhook block")
        if isinstance(action, CallWebhook):
            body: Any = render(action.payload, context)
        else:
            body = {"subject": render(action.subject, context),
                    "body": render(action.body, context)}
        response = block.call(body)
        response.raise_for_status()
        return f"webhook answered {response.status_code}"
    raise TypeError(f"unknown action {action!r}")
