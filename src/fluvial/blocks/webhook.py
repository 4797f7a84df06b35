"""``Webhook``: a URL to call with a JSON payload (the target of notification actions).

As ``prefect.blocks.webhook.Webhook``: the URL and headers are secrets (a webhook
URL often carries its own token), so they are encrypted at rest and never printed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from fluvial.blocks.core import Block
from fluvial.blocks.fields import SecretDict

__all__ = ["IncomingWebhook", "Webhook"]


class Webhook(Block):
    """Call a URL with a JSON body."""

    _block_type_slug: ClassVar[str | None] = "webhook"

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: SecretStr = Field(description="The webhook URL.")
    headers: SecretDict = Field(default_factory=lambda: SecretDict({}))
    timeout_seconds: float = 10.0

    def call(self, payload: dict[str, Any] | str | None = None) -> Any:
        """Send ``payload`` (JSON, or text) and return the ``httpx.Response``."""
        import httpx

        kwargs: dict[str, Any] = {"headers": self.headers.get_secret_value()}
        if isinstance(payload, str):
            kwargs["content"] = payload
        elif payload is not None:
            kwargs["json"] = payload
        return httpx.request(self.method, self.url.get_secret_value(),
                             timeout=self.timeout_seconds, **kwargs)


class IncomingWebhook(Block):
    """An endpoint of the server, ``POST /hooks/<name>``, that turns a request into an event.

    ``template`` is a Jinja template that renders to the event as JSON (``event`` and
    ``resource``, optionally ``related`` and ``payload``), with ``body`` (the request's
    JSON, or its form fields, or its text), ``headers`` (lower-case names), ``query`` and
    ``method`` in scope::

        IncomingWebhook(template='{"event": "github.{{ headers["x-github-event"] }}", '
                                 '"resource": {"fluvial.resource.id": '
                                 '"github.repo.{{ body.repository.full_name }}"}}').save("github")
    """

    _block_type_slug: ClassVar[str | None] = "incoming-webhook"

    template: str = Field(description="Jinja that renders the event as JSON.")
    enabled: bool = True
