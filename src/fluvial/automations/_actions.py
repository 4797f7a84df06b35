"""Actions, as in ``prefect.events.actions``: what an automation does when it fires.

    RunDeployment(deployment_id="flow/name" | id, parameters={...})   a run, once per firing
    PauseDeployment(deployment_id=...) / ResumeDeployment(deployment_id=...)
    CancelFlowRun()                     the flow run the triggering event is about
    ChangeFlowRunState(state="FAILED", name=None, message=None)      likewise
    CallWebhook(block_document_id="webhook/name", payload="...")     a Webhook block
    SendNotification(block_document_id="webhook/name", subject=..., body=...)

String values (parameters, payloads, messages) are Jinja templates, rendered when the
action runs (:mod:`fluvial.evaluator`) with ``event`` (``event.event``,
``event.resource.id``, ``event.payload``, ``event.related``...) and ``automation``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Action",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "PauseDeployment",
    "ResumeDeployment",
    "RunDeployment",
    "SendNotification",
]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunDeployment(_Base):
    type: Literal["run-deployment"] = "run-deployment"
    source: Literal["selected"] = "selected"
    deployment_id: str
    parameters: dict[str, Any] | None = None


class PauseDeployment(_Base):
    type: Literal["pause-deployment"] = "pause-deployment"
    deployment_id: str


class ResumeDeployment(_Base):
    type: Literal["resume-deployment"] = "resume-deployment"
    deployment_id: str


class CancelFlowRun(_Base):
    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class ChangeFlowRunState(_Base):
    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    state: Literal["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED",
                   "CANCELLED", "PAUSED"]
    name: str | None = None
    message: str | None = None


class CallWebhook(_Base):
    type: Literal["call-webhook"] = "call-webhook"
    block_document_id: str = Field(description="a Webhook block: 'webhook/name'")
    payload: str = ""


class SendNotification(_Base):
    type: Literal["send-notification"] = "send-notification"
    block_document_id: str = Field(description="a Webhook block: 'webhook/name'")
    subject: str = "fluvial: {{ automation.name }} fired"
    body: str = "{{ event.event }} on {{ event.resource.id }}"


Action = Annotated[
    RunDeployment | PauseDeployment | ResumeDeployment | CancelFlowRun | ChangeFlowRunState
    | CallWebhook | SendNotification,
    Field(discriminator="type"),
]
