"""Automations: a trigger on the event log, and actions to take when it fires.

    from fluvial.automations import Automation, EventTrigger, RunDeployment

    Automation(
        name="b-after-a",
        trigger=EventTrigger(expect={"fluvial.flow-run.Completed"},
                             match_related={"fluvial.resource.id": "fluvial.flow.a"}),
        actions=[RunDeployment(deployment_id="b/nightly",
                               parameters={"upstream": "{{ event.resource.id }}"})],
    ).create()

Triggers (``EventTrigger``, ``DeploymentEventTrigger``, ``CompoundTrigger``,
``SequenceTrigger``) and actions follow Prefect's names and matching rules.
:mod:`fluvial.evaluator` decides each firing once, whoever runs it (workers,
``serve()``, ``fluvial automation evaluate``).
"""

from fluvial.automations._actions import (
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    PauseDeployment,
    ResumeDeployment,
    RunDeployment,
    SendNotification,
)
from fluvial.automations._model import (
    Automation,
    AutomationNotFound,
    check_deployment_trigger,
    list_automations,
    load_automation_file,
    sync_deployment_triggers,
)
from fluvial.automations._triggers import (
    CompoundTrigger,
    DeploymentEventTrigger,
    EventTrigger,
    Posture,
    SequenceTrigger,
)

__all__ = [
    "Automation",
    "AutomationNotFound",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "DeploymentEventTrigger",
    "EventTrigger",
    "PauseDeployment",
    "Posture",
    "ResumeDeployment",
    "RunDeployment",
    "SendNotification",
    "SequenceTrigger",
    "check_deployment_trigger",
    "list_automations",
    "load_automation_file",
    "sync_deployment_triggers",
]
