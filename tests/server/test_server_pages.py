"""The web UI's pages and buttons, through the ASGI client (the browser test drives them live)."""

from __future__ import annotations

import re

from server_helpers import client

from fluvial.artifacts import create_markdown_artifact
from fluvial.server.security import CSRF_COOKIE


def _csrf(api) -> dict[str, str]:  # type: ignore[no-untyped-def]
    api.get("/deployments")
    return {"X-CSRF-Token": api.cookies.get(CSRF_COOKIE), "Origin": "http://127.0.0.1:4200"}


def test_every_page_renders(recorded: dict[str, str]) -> None:
    api = client()
    for path in ("/", "/runs", f"/runs/{recorded['run_id']}", "/deployments",
                 f"/deployments/{recorded['deployment_id']}", "/workers", "/limits",
                 "/runs?state=COMPLETED&flow_name=numbers"):
        page = api.get(path)
        assert page.status_code == 200, path
        assert "<title>" in page.text
    run_page = api.get(f"/runs/{recorded['run_id']}").text
    assert len(re.findall(r'id="task-[0-9a-f]', run_page)) == 4 and "square" in run_page
    assert re.search(r'data-stream="/ui/stream\?after=\d+\.\d+&amp;run=', run_page)
    assert api.get("/runs/nope").status_code == 404


def test_custom_run_form_is_built_from_the_schema_and_validated(recorded: dict[str, str]) -> None:
    api = client()
    dep = recorded["deployment_id"]
    form = api.get(f"/deployments/{dep}/custom-run").text
    assert re.search(r'name="n"\s+value="2"', form) and 'name="label"' in form
    headers = _csrf(api)
    bad = api.post(f"/deployments/{dep}/custom-run", data={"n": "many"}, headers=headers)
    assert bad.status_code == 422 and "n" in bad.text and "error" in bad.text
    ok = api.post(f"/deployments/{dep}/custom-run", data={"n": "7", "label": "y"},
                  headers=headers)
    assert ok.status_code == 200 and "Created" in ok.text
    run_id = re.search(r'href="/runs/([0-9a-f-]+)"', ok.text).group(1)
    assert api.get(f"/api/flow_runs/{run_id}").json()["state_type"] == "SCHEDULED"


def test_markdown_artifacts_are_sanitised_on_the_run_page(recorded: dict[str, str]) -> None:
    from fluvial.store import catalog

    artifact = create_markdown_artifact("# Report\n\n<img src=x onerror=alert(1)>", key="r")
    row = catalog.get_artifact(str(artifact))
    # link it to the recorded run, as one made inside that run would be
    from fluvial.store.connection import open_database, transaction

    conn = open_database()
    with transaction(conn):
        conn.execute("UPDATE artifacts SET flow_run_id = ? WHERE id = ?",
                     (recorded["run_id"], row.id))
    conn.close()
    page = client().get(f"/runs/{recorded['run_id']}").text
    assert "<h1>Report</h1>" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
