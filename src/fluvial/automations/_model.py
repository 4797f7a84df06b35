"""``Automation``: a trigger and its actions, stored in the run record.

    Automation(name="rerun", trigger=EventTrigger(...), actions=[RunDeployment(...)]).create()
    Automation.read(name="rerun").pause() / .resume() / .delete()
    load_automation_file("automation.yaml")     YAML or JSON; errors name the field

An automation that a deployment's trigger made carries that ``deployment_id`` and is
replaced whenever the deployment is applied again (:func:`sync_deployment_triggers`).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from fluvial.automations._actions import Action, RunDeployment
from fluvial.automations._triggers import DeploymentEventTrigger, EventTrigger, Trigger
from fluvial.exceptions import AutomationNotFound

__all__ = [
    "Automation",
    "AutomationNotFound",
    "check_deployment_trigger",
    "list_automations",
    "load_automation_file",
    "sync_deployment_triggers",
]

_COLUMNS = "id, name, description, enabled, trigger, actions, deployment_id, created, updated"
_trigger_adapter: TypeAdapter[Any] = TypeAdapter(Trigger)
_actions_adapter: TypeAdapter[Any] = TypeAdapter(list[Action])


class Automation(BaseModel):
    """A trigger and the actions to take when it fires."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    enabled: bool = True
    trigger: Trigger
    actions: list[Action] = Field(min_length=1)
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    deployment_id: str | None = None
    created: float | None = None

    # -- storing ------------------------------------------------------------------------

    def create(self) -> Automation:
        """Store this automation; names need not be unique (ids are)."""
        from fluvial.store.connection import open_database, transaction

        now = time.time()
        self.created = self.created or now
        conn = open_database()
        try:
            with transaction(conn):
                _insert(conn, self, now)
        finally:
            conn.close()
        return self

    @classmethod
    def read(cls, id: str | None = None, name: str | None = None) -> Automation:
        """The automation with ``id`` (or a unique id prefix), else the one named ``name``."""
        if (id is None) == (name is None):
            raise ValueError("give exactly one of id or name")
        matches = [a for a in list_automations()
                   if (id is not None and a.id.startswith(str(id)))
                   or (name is not None and a.name == name)]
        if len(matches) != 1:
            what = f"id {id!r}" if id is not None else f"name {name!r}"
            raise AutomationNotFound(
                f"{'no' if not matches else 'more than one'} automation with {what}")
        return matches[0]

    def pause(self) -> None:
        self._set_enabled(False)

    def resume(self) -> None:
        self._set_enabled(True)

    def _set_enabled(self, enabled: bool) -> None:
        from fluvial.store.connection import open_database, transaction

        conn = open_database()
        try:
            with transaction(conn):
                conn.execute("UPDATE automations SET enabled = ?, updated = ? WHERE id = ?",
                             (int(enabled), time.time(), self.id))
        finally:
            conn.close()
        self.enabled = enabled

    def delete(self) -> bool:
        from fluvial.store.connection import open_database, transaction

        conn = open_database()
        try:
            with transaction(conn):
                _delete(conn, "id = ?", (self.id,))
                return True
        finally:
            conn.close()

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _insert(conn: Any, automation: Automation, now: float) -> None:
    conn.execute(
        f"INSERT INTO automations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (automation.id, automation.name, automation.description, int(automation.enabled),
         json.dumps(_trigger_adapter.dump_python(automation.trigger, mode="json")),
         json.dumps(_actions_adapter.dump_python(automation.actions, mode="json")),
         automation.deployment_id, automation.created or now, now))


def _delete(conn: Any, where: str, args: tuple[Any, ...]) -> None:
    ids = [r[0] for r in conn.execute(f"SELECT id FROM automations WHERE {where}", args)]
    for automation_id in ids:
        conn.execute("DELETE FROM automation_buckets WHERE automation_id = ?", (automation_id,))
        conn.execute("DELETE FROM automations WHERE id = ?", (automation_id,))


def _from_row(row: Any) -> Automation:
    return Automation(
        id=row[0], name=row[1], description=row[2] or "", enabled=bool(row[3]),
        trigger=_trigger_adapter.validate_python(json.loads(row[4])),
        actions=_actions_adapter.validate_python(json.loads(row[5])),
        deployment_id=row[6], created=row[7])


def list_automations(conn: Any = None, enabled_only: bool = False) -> list[Automation]:
    """Every stored automation, oldest first."""
    from fluvial.store.connection import open_database

    own = conn is None
    conn = conn or open_database()
    try:
        sql = f"SELECT {_COLUMNS} FROM automations"
        if enabled_only:
            sql += " WHERE enabled = 1"
        return [_from_row(r) for r in conn.execute(sql + " ORDER BY created, id").fetchall()]
    finally:
        if own:
            conn.close()


def load_automation_file(path: str | Path) -> Automation:
    """An automation from a YAML or JSON file; a clear error naming the file and field."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with name, trigger and actions")
    try:
        return Automation.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """A validation error as ``field.path: message`` items (discriminator tags left out)."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"] if not _is_tag(p))
        parts.append(f"{loc or 'automation'}: {error['msg']}")
    return "; ".join(parts)


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in {"event", "compound", "sequence"}
                                      or "-" in part and part.islower())


def sync_deployment_triggers(deployment_id: str, deployment_name: str,
                             triggers: list[Any], conn: Any = None) -> list[Automation]:
    """Replace the automations of a deployment's triggers by ones for ``triggers``.

    Each trigger (a ``DeploymentEventTrigger``, an ``EventTrigger``, or its dict form)
    becomes an automation that runs the deployment with the trigger's ``parameters``.
    """
    from fluvial.store.connection import open_database, transaction

    built = [_deployment_automation(deployment_id, deployment_name, t, i)
             for i, t in enumerate(triggers)]
    own = conn is None
    conn = conn or open_database()
    try:
        with transaction(conn):
            _delete(conn, "deployment_id = ?", (deployment_id,))
            now = time.time()
            for automation in built:
                automation.created = now
                _insert(conn, automation, now)
    finally:
        if own:
            conn.close()
    return built


def check_deployment_trigger(where: str, trigger: Any, index: int) -> EventTrigger:
    """One of a deployment's triggers as an ``EventTrigger`` (dicts validated); errors name it."""
    if isinstance(trigger, dict):
        try:
            return DeploymentEventTrigger.model_validate(trigger)
        except ValidationError as exc:
            raise ValueError(f"{where}: trigger {index}: {describe_errors(exc)}") from None
    if not isinstance(trigger, EventTrigger):
        raise TypeError(f"{where}: trigger {index} must be an EventTrigger or "
                        f"DeploymentEventTrigger, got {type(trigger).__name__}")
    return trigger


def _deployment_automation(deployment_id: str, deployment_name: str, trigger: Any,
                           index: int) -> Automation:
    trigger = check_deployment_trigger(f"deployment {deployment_name!r}", trigger, index)
    extra = {"name", "description", "enabled", "parameters"}
    plain = EventTrigger.model_validate(trigger.model_dump(exclude=extra))
    parameters = getattr(trigger, "parameters", None)
    return Automation(
        name=getattr(trigger, "name", None) or f"{deployment_name}__trigger_{index}",
        description=getattr(trigger, "description", None) or "",
        enabled=getattr(trigger, "enabled", True), trigger=plain,
        actions=[RunDeployment(deployment_id=deployment_id, parameters=parameters)],
        deployment_id=deployment_id)
