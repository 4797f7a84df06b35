"""The JSON API over a real record: runs (keyset pages, filters), task runs, logs, deployments."""

from __future__ import annotations

import time

from server_helpers import client

from fluvial import flow
from fluvial.store import get_recorder


def test_flow_runs_pages_and_filters(recorded: dict[str, str]) -> None:
    @flow
    def other() -> int:
        return 1

    for _ in range(5):
        other()
    get_recorder().flush()  # the task/flow rows are written by the recorder's writer
    api = client()
    first = api.get("/api/flow_runs", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [r["id"] for r in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/api/flow_runs", params={"limit": 2, "cursor": cursor}).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 6
    assert [r["flow_name"] for r in api.get("/api/flow_runs", params={
        "flow_name": "numbers"}).json()["items"]] == ["numbers"]
    assert api.get("/api/flow_runs", params={"state": "failed"}).json()["items"] == []
    assert len(api.get("/api/flow_runs", params={"since": time.time() + 60}).json()["items"]) == 0
    assert api.get("/api/flow_runs", params={"cursor": "garbage"}).status_code == 400
    assert api.get("/api/flow_runs", params={"state": "nope"}).status_code == 422


def test_one_run_its_task_runs_and_logs(recorded: dict[str, str]) -> None:
    api = client()
    run = api.get(f"/api/flow_runs/{recorded['run_id']}").json()
    assert run["state_type"] == "COMPLETED" and run["parameters"]["n"] == "4"
    assert [s["type"] for s in run["states"]] == ["RUNNING", "COMPLETED"]
    assert run["tasks"][0]["name"] == "square" and run["tasks"][0]["total"] == 4
    page = api.get(f"/api/flow_runs/{recorded['run_id']}/task_runs", params={"limit": 3}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = api.get(f"/api/flow_runs/{recorded['run_id']}/task_runs",
                   params={"cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    logs = api.get(f"/api/flow_runs/{recorded['run_id']}/logs").json()
    assert sum("square of" in line["message"] for line in logs) == 4
    later = api.get(f"/api/flow_runs/{recorded['run_id']}/logs",
                    params={"after": logs[-1]["seq"]}).json()
    assert later == []
    assert api.get("/api/flow_runs/not-a-run").status_code == 404
    assert api.get("/api/flow_runs/not-a-run/task_runs").status_code == 404


def test_deployments_run_pause_resume_delete(recorded: dict[str, str]) -> None:
    api = client()
    [dep] = api.get("/api/deployments").json()
    assert dep["full_name"] == "numbers/nightly" and dep["parameters"] == {"n": 2}
    made = api.post(f"/api/deployments/{dep['id']}/run", json={"parameters": {"n": 5}})
    assert made.status_code == 201 and made.json()["state_type"] == "SCHEDULED"
    bad = api.post(f"/api/deployments/{dep['id']}/run", json={"parameters": {"nope": 1}})
    assert bad.status_code == 422 and "nope" in bad.json()["detail"]
    assert api.post("/api/deployments/numbers/nightly/pause").status_code == 404  # ids only in paths
    assert api.post(f"/api/deployments/{dep['id']}/pause").json()["paused"] is True
    assert api.post(f"/api/deployments/{dep['id']}/resume").json()["paused"] is False
    runs = api.get("/api/flow_runs", params={"deployment_id": dep["id"]}).json()["items"]
    assert len(runs) == 1
    assert api.post(f"/api/flow_runs/{runs[0]['id']}/cancel").json()["state_type"] == "CANCELLED"
    assert api.delete(f"/api/deployments/{dep['id']}").status_code == 200
    assert api.get("/api/deployments").json() == []


def test_create_a_deployment_from_an_entrypoint(project, recorded: dict[str, str]) -> None:
    api = client()
    made = api.post("/api/deployments", json={
        "entrypoint": f"{project / 'flows.py'}:numbers", "name": "hourly", "interval": 3600,
        "parameters": {"n": 1}})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "hourly"
    bad = api.post("/api/deployments", json={"entrypoint": f"{project / 'flows.py'}:missing",
                                             "name": "x"})
    assert bad.status_code == 422 and "missing" in bad.json()["detail"]


def test_events_are_accepted_and_evaluated() -> None:
    api = client()
    made = api.post("/api/events", json={"event": "order.placed",
                                         "resource": {"prefect.resource.id": "order.1"},
                                         "payload": {"total": 3}})
    assert made.status_code == 202 and made.json()["event"] == "order.placed"
    bad = api.post("/api/events", json={"event": "x", "resource": {"no": "id"}})
    assert bad.status_code == 422 and "resource.id" in bad.json()["detail"]


def test_workers_and_limits_lists() -> None:
    from fluvial import concurrency

    concurrency.set_limit("db", 3)
    api = client()
    assert api.get("/api/workers").json() == []
    [limit] = api.get("/api/concurrency_limits").json()
    assert (limit["tag"], limit["limit"], limit["active"]) == ("db", 3, 0)
    assert api.get("/api/health").json() == {"status": "ok"}


def test_an_incoming_webhook_turns_a_request_into_an_event() -> None:
    from fluvial.blocks.webhook import IncomingWebhook
    from fluvial.events._read import read_since
    from fluvial.store.connection import open_database

    IncomingWebhook(template='{"event": "github.{{ headers["x-github-event"] }}", '
                             '"resource": {"fluvial.resource.id": '
                             '"github.repo.{{ body.repository.name }}"}, '
                             '"payload": {"ref": "{{ body.ref }}"}}').save("github")
    api = client()
    made = api.post("/hooks/github", json={"repository": {"name": "shop"}, "ref": "main"},
                    headers={"X-GitHub-Event": "push"})
    assert made.status_code == 202, made.text
    conn = open_database()
    try:
        events, _ = read_since(conn, (0, 0), flow_runs=False, task_runs=False)
    finally:
        conn.close()
    [event] = [e for e in events if e.event == "github.push"]
    assert event.resource["fluvial.resource.id"] == "github.repo.shop"
    assert event.payload == {"ref": "main"}
    assert api.post("/hooks/nope", json={}).status_code == 404
    IncomingWebhook(template="not json {{ body }}").save("broken")
    bad = api.post("/hooks/broken", json={"a": 1})
    assert bad.status_code == 422 and "did not render an event" in bad.text
    guarded = client(host="10.1.2.3", token="t0ken")
    assert guarded.post("/hooks/github", json={}).status_code == 401
