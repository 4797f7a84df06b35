"""``POST /hooks/{name}``: an ``IncomingWebhook`` block's template turns the request into an event.

Guarded like the API (a token off loopback). The template is rendered in Jinja's sandbox;
a template that fails, or renders something that is not an event, is a 422 naming why.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request

router = APIRouter(tags=["events"])

MAX_BODY = 1 << 20


@router.post("/hooks/{name}", status_code=202)
async def receive(name: str, request: Request) -> dict[str, str]:
    """Render the webhook's template with the request and record the event it describes."""
    from fluvial.blocks.webhook import IncomingWebhook
    from fluvial.exceptions import BlockNotFoundError

    try:
        hook = IncomingWebhook.load(name)
    except (BlockNotFoundError, ValueError):
        raise HTTPException(404, f"no webhook {name!r}") from None
    if not hook.enabled:
        raise HTTPException(404, f"webhook {name!r} is disabled")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(413, "request body too large")
    context = {"body": await _body(request, raw), "method": request.method,
               "headers": {k.lower(): v for k, v in request.headers.items()},
               "query": dict(request.query_params)}
    return _emit(name, hook.template, context)


async def _body(request: Request, raw: bytes) -> Any:
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError:
            raise HTTPException(422, "the body is not JSON") from None
    if "form" in kind:
        return {k: str(v) for k, v in (await request.form()).items()}
    return raw.decode("utf-8", "replace")


def _emit(name: str, template: str, context: dict[str, Any]) -> dict[str, str]:
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    from fluvial.events import emit_event
    from fluvial.store import get_recorder

    try:
        text = SandboxedEnvironment(autoescape=False).from_string(template).render(**context)
        spec = json.loads(text)
    except (TemplateError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"webhook {name!r}: its template did not render an event: "
                                 f"{exc}") from None
    if not isinstance(spec, dict) or "event" not in spec or "resource" not in spec:
        raise HTTPException(422, f"webhook {name!r}: the template must render an object "
                                 "with 'event' and 'resource'")
    try:
        event = emit_event(str(spec["event"]), spec["resource"], related=spec.get("related"),
                           payload=spec.get("payload"))
    except (TypeError, ValueError) as exc:
        raise HTTPException(422, f"webhook {name!r}: {exc}") from None
    recorder = get_recorder()
    if recorder is not None:
        recorder.flush()
    return {"id": str(event.id), "event": event.event}
