"""The web UI's pages and the buttons on them (htmx posts that answer with a fragment).

Pages read through :mod:`fluvial.server.queries` (bounded queries, keyset pages) and
render through :mod:`fluvial.server.ui.render` (autoescaped). Live updates come from
:mod:`fluvial.server.ui.stream`; nothing in a page polls.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fluvial.server import queries
from fluvial.server.db import connection
from fluvial.server.security import SESSION_COOKIE
from fluvial.server.ui.render import page
from fluvial.server.ui.stream import stream_url

router = APIRouter(include_in_schema=False)

STATES = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLING",
          "CANCELLED", "PAUSED"]
COLORS = {"COMPLETED": "#3aa55d", "FAILED": "#d64545", "CRASHED": "#a11d1d", "RUNNING": "#3b78e7",
          "CANCELLED": "#e0a030", "CANCELLING": "#e0a030", "PAUSED": "#e0c030",
          "SCHEDULED": "#9aa3b5", "PENDING": "#b8bfcc"}


# ---------------------------------------------------------------------------- sign in


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return page(request, "login.html", next=_local(next), error=None)


@router.post("/login")
def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    guard = request.app.state.guard
    if not guard.requires_auth:
        return RedirectResponse(_local(next), status_code=303)
    if not guard.token_ok(token):
        return page(request, "login.html", status=401, next=_local(next),
                    error="That token is not this server's.")
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, guard.new_session(), httponly=True,
                        samesite="strict", path="/")
    return response


def _local(target: str) -> str:
    """Only a path on this server (an open redirect would help phishing)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# ---------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    now = time.time()
    live = stream_url()
    with connection() as conn:
        hourly = conn.execute(
            "SELECT CAST((created - ?) / 3600 AS INTEGER), state_type, COUNT(*) FROM flow_runs "
            "WHERE created >= ? GROUP BY 1, 2", (now - 86400, now - 86400)).fetchall()
        failing = conn.execute(
            "SELECT flow_name, COUNT(*), MAX(created) FROM flow_runs WHERE created >= ? AND "
            "state_type IN ('FAILED', 'CRASHED') GROUP BY flow_name ORDER BY 2 DESC LIMIT 10",
            (now - 86400,)).fetchall()
        late = conn.execute(
            "SELECT id, name, flow_name, scheduled_start_time FROM flow_runs WHERE "
            "state_type = 'SCHEDULED' AND scheduled_start_time < ? ORDER BY "
            "scheduled_start_time LIMIT 10", (now - 30,)).fetchall()
        workers = queries.workers(conn)[:10]
        runs = queries.flow_runs(conn, limit=15).items
    return page(request, "dashboard.html", nav="Dashboard", stream_url=live,
                chart=_chart(hourly), runs=runs, workers=workers,
                failing=[{"flow_name": f, "count": c, "last": t} for f, c, t in failing],
                late=[{"id": i, "name": n, "flow_name": f, "scheduled_start_time": s}
                      for i, n, f, s in late])


def _chart(hourly: list[tuple[int, str | None, int]]) -> dict[str, Any]:
    buckets: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for hour, state, count in hourly:
        key = state or "PENDING"
        buckets.setdefault(int(hour), {})[key] = count
        totals[key] = totals.get(key, 0) + count
    peak = max((sum(b.values()) for b in buckets.values()), default=1) or 1
    bars = []
    for hour in range(24):
        y = 120.0
        segments = []
        for state, count in sorted(buckets.get(hour, {}).items()):
            h = 110.0 * count / peak
            y -= h
            segments.append({"state": state, "count": count, "y": round(y, 1),
                             "h": round(h, 1), "color": COLORS.get(state, "#999")})
        bars.append({"x": hour * 20, "label": f"{24 - hour} h ago", "segments": segments})
    return {"bars": bars, "totals": totals}


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, state: str | None = None, flow_name: str | None = None,
              tag: str | None = None, cursor: str | None = None) -> Response:
    state = state if state in STATES else None
    live = stream_url()
    try:
        with connection() as conn:
            result = queries.flow_runs(conn, limit=50, cursor=cursor, state=state,
                                       flow_name=flow_name or None, tag=tag or None)
    except ValueError:
        raise HTTPException(400, "bad cursor") from None
    filters = {"state": state, "flow_name": flow_name, "tag": tag}
    next_query = urlencode({**{k: v for k, v in filters.items() if v},
                            "cursor": result.next_cursor or ""})
    stream = None if (cursor or state or flow_name or tag) else live
    return page(request, "runs.html", nav="Runs", page=result, filters=filters, states=STATES,
                next_query=next_query, stream_url=stream)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, cursor: str | None = None) -> Response:
    live = stream_url(run_id)
    with connection() as conn:
        run = queries.flow_run(conn, run_id)
        if run is None:
            raise HTTPException(404, "no such flow run")
        states = queries.run_states(conn, run_id)
        tasks = queries.task_run_summary(conn, run_id)
        try:
            task_page = queries.task_runs(conn, run_id, limit=200, cursor=cursor)
        except ValueError:
            raise HTTPException(400, "bad cursor") from None
        logs = queries.logs(conn, run_id, limit=500)
        edges = queries.task_edges(conn, run_id)
    return page(request, "run.html", nav="Runs", run=run, states=states, tasks=tasks,
                task_page=task_page, logs=logs, artifacts=_artifacts(run_id),
                total_task_runs=sum(t["total"] for t in tasks),
                timeline=_timeline(run, tasks), graph=_graph(tasks, edges),
                stream_url=live)


def _artifacts(run_id: str) -> list[dict[str, Any]]:
    from fluvial.artifacts import render_markdown
    from fluvial.store import catalog

    out = []
    for a in catalog.latest_artifacts(limit=20, flow_run_id=run_id):
        item = {"key": a.key, "type": a.type, "data": a.data, "description": a.description}
        if a.type == "markdown":
            item["html"] = render_markdown(str(a.data))
        out.append(item)
    return out


def _timeline(run: dict[str, Any], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = run["start_time"] or run["created"]
    end = run["end_time"] or max([t["last_end"] or 0 for t in tasks] + [time.time()])
    span = max(end - start, 1e-6)
    bars = [{"name": "flow run", "x": 0, "w": 700, "color": COLORS.get(run["state_type"] or "",
                                                                        "#999"),
             "label": f"{span:.2f}s"}]
    for t in tasks:
        first = t["first_start"] or t["first_created"] or start
        last = t["last_end"] or end
        x = 700 * max(first - start, 0) / span
        worst = next((s for s in ("CRASHED", "FAILED", "RUNNING") if s in t["states"]),
                     "COMPLETED")
        bars.append({"name": t["name"], "x": round(x, 1),
                     "w": round(max(700 * (last - first) / span, 2), 1),
                     "color": COLORS[worst], "label": f"{t['total']} runs, {last - first:.2f}s"})
    return bars


NODE_W, NODE_H, COLUMN, ROW = 150, 36, 200, 56


def _graph(tasks: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    """One node per task (not per task run: a map of thousands is one node with a count),
    edges between tasks with how many task-run edges each stands for. Laid out by start
    time: a task's column is one past the furthest of its upstream tasks that started
    before it; within a column, tasks go down in start order."""
    order = {t["task_key"]: i for i, t in enumerate(tasks)}  # tasks come in start order
    upstreams: dict[str, set[str]] = {}
    for e in edges:
        if e["upstream"] in order and e["downstream"] in order \
                and order[e["upstream"]] < order[e["downstream"]]:
            upstreams.setdefault(e["downstream"], set()).add(e["upstream"])
    column: dict[str, int] = {}
    rows_in: dict[int, int] = {}
    nodes = []
    place: dict[str, tuple[float, float]] = {}
    for t in tasks:
        key = t["task_key"]
        col = 1 + max((column[u] for u in upstreams.get(key, ())), default=-1)
        column[key] = col
        row = rows_in.get(col, 0)
        rows_in[col] = row + 1
        x, y = 10 + col * COLUMN, 10 + row * ROW
        place[key] = (x, y)
        worst = next((s for s in ("CRASHED", "FAILED", "RUNNING") if s in t["states"]),
                     "COMPLETED")
        nodes.append({"name": t["name"], "total": t["total"], "x": x, "y": y,
                      "color": COLORS[worst]})
    lines = []
    for e in edges:
        up, down = place.get(e["upstream"]), place.get(e["downstream"])
        if up is None or down is None or e["upstream"] == e["downstream"]:
            continue  # a task feeding its own runs (a chain) shows in the edge list only
        x1, y1 = up[0] + NODE_W, up[1] + NODE_H / 2
        x2, y2 = down[0], down[1] + NODE_H / 2
        lines.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "count": e["count"],
                      "lx": round((x1 + x2) / 2, 1), "ly": round((y1 + y2) / 2 - 4, 1),
                      "title": f"{e['upstream']} \u2192 {e['downstream']}: {e['count']}"})
    columns = max(column.values(), default=0) + 1
    rows = max(rows_in.values(), default=1)
    return {"nodes": nodes, "edges": lines, "width": max(900, 20 + columns * COLUMN),
            "height": 20 + rows * ROW}


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(request: Request) -> Response:
    with connection() as conn:
        deps = queries.deployments(conn)
    return page(request, "deployments.html", nav="Deployments", deployments=deps)


@router.get("/deployments/{deployment_id}", response_class=HTMLResponse)
def deployment_page(request: Request, deployment_id: str) -> Response:
    from fluvial.schedules import schedule_from_dict

    with connection() as conn:
        dep = next((d for d in queries.deployments(conn) if d["id"] == deployment_id), None)
        if dep is None:
            raise HTTPException(404, "no such deployment")
        runs = queries.flow_runs(conn, limit=50, deployment_id=deployment_id).items
        ticks = [{"fire_time": r[0], "outcome": r[1], "reason": r[2]} for r in conn.execute(
            "SELECT fire_time, outcome, reason FROM schedule_ticks WHERE deployment_id = ? "
            "ORDER BY seq DESC LIMIT 20", (deployment_id,)).fetchall()]
    upcoming = []
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    for s in dep["schedules"]:
        if not s["active"] or dep["paused"]:
            continue
        times = schedule_from_dict(s["schedule"]).fire_times(now)
        for _ in range(5):
            fire = next(times, None)
            if fire is None:
                break
            upcoming.append({"time": fire.timestamp(), "slug": s["slug"]})
    upcoming.sort(key=lambda u: u["time"])
    return page(request, "deployment.html", nav="Deployments", d=dep, runs=runs, ticks=ticks,
                upcoming=upcoming[:10])


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request) -> Response:
    with connection() as conn:
        workers = queries.workers(conn)
    pools: dict[str, list[dict[str, Any]]] = {}
    for w in workers:
        pools.setdefault(w["work_pool"] or "default", []).append(w)
    return page(request, "workers.html", nav="Work pools", pools=pools)


@router.get("/limits", response_class=HTMLResponse)
def limits_page(request: Request) -> Response:
    from fluvial.server.api.platform import list_limits

    return page(request, "limits.html", nav="Concurrency", limits=list_limits())


# ---------------------------------------------------------------------------- buttons


def _note(text: str, error: bool = False) -> HTMLResponse:
    return HTMLResponse(f'<span class="{"error" if error else "muted"}">{escape(text)}</span>')


def _run_link(run: Any) -> HTMLResponse:
    return HTMLResponse(f'<span class="muted">Created <a href="/runs/{escape(str(run.id))}">'
                        f'{escape(str(run.name or run.id))}</a></span>')


@router.post("/runs/{run_id}/cancel")
def cancel_button(run_id: str) -> HTMLResponse:
    from fluvial.flow_runs import cancel_flow_run

    try:
        return _note(f"now {cancel_flow_run(run_id, wait=False).title()}")
    except (ValueError, LookupError) as exc:
        return _note(str(exc), error=True)


@router.post("/runs/{run_id}/resume")
def resume_button(run_id: str) -> HTMLResponse:
    from fluvial.flow_runs import resume_flow_run

    try:
        resume_flow_run(run_id)
    except (ValueError, LookupError, RuntimeError) as exc:
        return _note(str(exc), error=True)
    return _note("resumed")


@router.post("/runs/{run_id}/retry")
def retry_button(run_id: str) -> HTMLResponse:
    from fluvial.deployments import run_deployment

    with connection() as conn:
        run = queries.flow_run(conn, run_id)
    if run is None or not run["deployment_id"]:
        return _note("only a deployment's runs can be retried here", error=True)
    row = None
    with connection() as conn:
        row = conn.execute("SELECT job_parameters FROM flow_runs WHERE id = ?",
                           (run_id,)).fetchone()
    try:
        params = json.loads(row[0]) if row and row[0] else {}
        return _run_link(run_deployment(run["deployment_id"], parameters=params, timeout=0,
                                        as_subflow=False))
    except (ValueError, TypeError, LookupError) as exc:
        return _note(str(exc), error=True)


@router.post("/deployments/{deployment_id}/quick-run")
def quick_run(deployment_id: str) -> HTMLResponse:
    from fluvial.deployments import run_deployment

    try:
        return _run_link(run_deployment(deployment_id, timeout=0, as_subflow=False))
    except (ValueError, TypeError, LookupError) as exc:
        return _note(str(exc), error=True)


def _fields(dep: dict[str, Any], values: dict[str, str] | None = None) -> list[tuple[str, Any]]:
    schema = dep["parameter_schema"] or {}
    required = set(schema.get("required", []))
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        default = dep["parameters"].get(name, prop.get("default", ""))
        value = (values or {}).get(name, default if isinstance(default, str)
                                   else json.dumps(default) if default != "" else "")
        out.append((name, {"type": prop.get("type", "any"), "value": value,
                           "required": name in required and name not in dep["parameters"]}))
    return out


def _deployment(deployment_id: str) -> dict[str, Any]:
    with connection() as conn:
        dep = next((d for d in queries.deployments(conn) if d["id"] == deployment_id), None)
    if dep is None:
        raise HTTPException(404, "no such deployment")
    return dep


@router.get("/deployments/{deployment_id}/custom-run", response_class=HTMLResponse)
def custom_run_form(request: Request, deployment_id: str) -> Response:
    from fluvial.server.ui.render import env

    dep = _deployment(deployment_id)
    return HTMLResponse(env.get_template("custom_run.html").render(
        d=dep, fields=_fields(dep), errors=None))


def _typed(text: str, kind: str) -> Any:
    if kind == "string":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # the flow's own validation names the parameter


@router.post("/deployments/{deployment_id}/custom-run", response_class=HTMLResponse)
async def custom_run(request: Request, deployment_id: str) -> Response:
    from fluvial.deployments import run_deployment
    from fluvial.exceptions import ParameterTypeError
    from fluvial.server.ui.render import env

    dep = _deployment(deployment_id)
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    kinds = {name: field["type"] for name, field in _fields(dep)}
    params = {k: _typed(v, kinds.get(k, "any")) for k, v in values.items()
              if k in kinds and v != ""}
    try:
        run = run_deployment(deployment_id, parameters=params, timeout=0, as_subflow=False)
    except (ParameterTypeError, ValueError, TypeError) as exc:
        return HTMLResponse(env.get_template("custom_run.html").render(
            d=dep, fields=_fields(dep, values), errors=str(exc)), status_code=422)
    return _run_link(run)


@router.post("/deployments/{deployment_id}/pause")
def pause_button(deployment_id: str) -> HTMLResponse:
    from fluvial.deployments._records import set_paused

    set_paused(_deployment(deployment_id)["id"], True)
    return _note("paused")


@router.post("/deployments/{deployment_id}/resume")
def resume_deployment_button(deployment_id: str) -> HTMLResponse:
    from fluvial.deployments._records import set_paused

    set_paused(_deployment(deployment_id)["id"], False)
    return _note("resumed")


@router.post("/deployments/{deployment_id}/delete")
def delete_button(deployment_id: str) -> HTMLResponse:
    from fluvial.deployments._records import delete_deployment

    delete_deployment(_deployment(deployment_id)["id"])
    return _note("deleted")
