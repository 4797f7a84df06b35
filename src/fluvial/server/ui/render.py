"""Rendering pages: the Jinja2 environment (autoescaped), its filters, the CSRF cookie.

Every string from the record reaches a page through an autoescaping template, so a
log line or a run name cannot inject markup; Markdown artifacts are rendered and
sanitised by :func:`fluvial.artifacts.render_markdown` before being marked safe.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from fluvial._readable import readable_duration, readable_time
from fluvial.server.security import CSRF_COOKIE, new_csrf_token

__all__ = ["env", "fragment", "page"]

TEMPLATES = Path(__file__).parent.parent / "templates"


def _duration(seconds: float | None) -> str:
    return readable_duration(seconds, seconds_past_an_hour=False)


def _schedule(spec: dict[str, Any]) -> str:
    for key in ("cron", "rrule"):
        if spec.get(key):
            return f"{key} {spec[key]}" + (f" ({spec['timezone']})" if spec.get("timezone") else "")
    if spec.get("interval") is not None:
        return f"every {_duration(float(spec['interval']))}"
    return str(spec.get("type", "?"))


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["when"] = readable_time
env.filters["duration"] = _duration
env.filters["levelname"] = lambda level: logging.getLevelName(int(level))
env.filters["schedule"] = _schedule

# The page's own CSS and script are small: inlined, a page load is the document, htmx
# (cached) and the live stream — three requests.
_STATIC = TEMPLATES.parent / "static"
env.globals["inline_css"] = Markup((_STATIC / "fluvial.css").read_text())
env.globals["inline_js"] = Markup((_STATIC / "fluvial.js").read_text())


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A full page, with the CSRF token in its meta tag (and in a cookie, set if new)."""
    token = request.cookies.get(CSRF_COOKIE)
    fresh = not token
    if fresh:
        token = new_csrf_token()
    context.setdefault("stream_url", None)
    context.setdefault("nav", None)
    html = env.get_template(template).render(csrf_token=token, **context)
    response = HTMLResponse(html, status_code=status)
    if fresh:
        response.set_cookie(CSRF_COOKIE, token or "", httponly=True, samesite="strict",
                            path="/")
    return response


def fragment(template_source: str, **context: Any) -> str:
    """A snippet rendered from a template string (macros imported by name)."""
    return env.from_string(template_source).render(**context)


def macro(name: str, *args: Any) -> str:
    """One macro of ``_macros.html`` rendered (the rows the live stream sends)."""
    module = env.get_template("_macros.html").module
    return str(getattr(module, name)(*args))
