"""Events: emitted through the recorder, state changes read as events, retention cleanup."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
from click.testing import CliRunner

from fluvial import flow, task
from fluvial.cli import main as cli
from fluvial.events import Event, cleanup, emit_event
from fluvial.events._read import read_since
from fluvial.store import get_recorder
from fluvial.store.connection import open_database


def _all_events(flow_runs: bool = True, task_runs: bool = True) -> list:
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()
    conn = open_database()
    try:
        events, _ = read_since(conn, (0, 0), limit=10_000, flow_runs=flow_runs,
                               task_runs=task_runs)
        return events
    finally:
        conn.close()


def test_emit_event_is_recorded_in_order_with_prefect_labels(backend: str) -> None:
    first = emit_event("sensor.reading", {"prefect.resource.id": "sensor.7",
                                          "prefect.resource.name": "seven"},
                       payload={"value": 3.5},
                       related=[{"prefect.resource.id": "site.a", "prefect.resource.role": "site"}])
    second = emit_event("sensor.reading", {"fluvial.resource.id": "sensor.8"}, follows=first.id)
    assert isinstance(first, Event) and first.resource == {
        "fluvial.resource.id": "sensor.7", "fluvial.resource.name": "seven"}
    stored = [e for e in _all_events() if e.event == "sensor.reading"]
    assert [e.id for e in stored] == [str(first.id), str(second.id)]
    assert stored[0].seq < stored[1].seq
    assert stored[0].payload == {"value": 3.5}
    assert stored[0].related == [{"fluvial.resource.id": "site.a", "fluvial.resource.role": "site"}]
    assert stored[1].follows == str(first.id)
    assert stored[0].received >= stored[0].occurred - 1


def test_an_event_id_is_recorded_once(backend: str) -> None:
    event_id = uuid.uuid4()
    emit_event("once", {"fluvial.resource.id": "r"}, id=event_id)
    emit_event("once", {"fluvial.resource.id": "r"}, id=event_id)
    assert len([e for e in _all_events() if e.event == "once"]) == 1


@pytest.mark.parametrize("bad, match", [
    (dict(event="", resource={"fluvial.resource.id": "x"}), "non-empty"),
    (dict(event="e", resource={"no.id": "x"}), "fluvial.resource.id"),
    (dict(event="e", resource={"fluvial.resource.id": 3}), "strings"),
    (dict(event="e", resource={"fluvial.resource.id": "x"},
          related=[{"fluvial.resource.id": "y"}]), r"related\[0\].*role"),
    (dict(event="e", resource={"fluvial.resource.id": "x"}, payload={"f": object()}), "JSON"),
])
def test_bad_events_are_clear_errors(bad: dict, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        emit_event(**bad)


def test_state_changes_are_events_with_flow_and_tags_related(backend: str) -> None:
    @task(tags=["etl"])
    def step() -> int:
        return 1

    @flow
    def nightly() -> int:
        return step()

    state = nightly(return_state=True)
    assert state.is_completed()
    events = _all_events()
    flow_events = [e for e in events if e.event.startswith("fluvial.flow-run.")]
    assert [e.event for e in flow_events] == ["fluvial.flow-run.Running",
                                              "fluvial.flow-run.Completed"]
    completed = flow_events[-1]
    assert completed.resource["fluvial.resource.id"].startswith("fluvial.flow-run.")
    assert {"fluvial.resource.id": "fluvial.flow.nightly", "fluvial.resource.role": "flow",
            "fluvial.resource.name": "nightly"} in completed.related
    task_events = [e for e in events if e.event.startswith("fluvial.task-run.")]
    assert task_events[-1].event == "fluvial.task-run.Completed"
    assert {"fluvial.resource.id": "fluvial.tag.etl", "fluvial.resource.role": "tag"} in \
        task_events[-1].related
    only_flows = _all_events(task_runs=False)
    assert all(not e.event.startswith("fluvial.task-run.") for e in only_flows)


def test_cleanup_removes_old_events_and_their_resource_rows(backend: str) -> None:
    emit_event("old", {"fluvial.resource.id": "r"},
               related=[{"fluvial.resource.id": "x", "fluvial.resource.role": "thing"}])
    get_recorder().flush()
    assert cleanup(retention_days=1, now=time.time() + 2 * 86400) == 1
    conn = open_database()
    try:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM event_resources").fetchone()[0] == 0
    finally:
        conn.close()
    emit_event("new", {"fluvial.resource.id": "r"})
    get_recorder().flush()
    assert cleanup(retention_days=1) == 0


def test_cli_emit_and_stream() -> None:
    result = CliRunner().invoke(cli, ["events", "emit", "deploy.done", "--resource-id", "app.1",
                                      "--payload", '{"version": "1.2"}'])
    assert result.exit_code == 0, result.output
    events = [e for e in _all_events() if e.event == "deploy.done"]
    assert events[0].payload == {"version": "1.2"}
    bad = CliRunner().invoke(cli, ["events", "emit", "x", "--resource-id", "r",
                                   "--payload", "[1]"])
    assert bad.exit_code == 2 and "JSON object" in bad.output


def test_events_stream_tails_new_events() -> None:
    import threading

    from fluvial.events import stream

    got: list = []
    stop = threading.Event()

    def tail() -> None:
        for event in stream("tail.*", poll_interval=0.05, stop=stop.is_set):
            got.append(event.event)
            if len(got) == 2:
                stop.set()

    thread = threading.Thread(target=tail)
    thread.start()
    time.sleep(0.3)
    for name in ("tail.one", "other", "tail.two"):
        emit_event(name, {"fluvial.resource.id": "r"})
        get_recorder().flush()
    thread.join(timeout=30)
    assert got == ["tail.one", "tail.two"]


def test_occurred_defaults_to_now_and_naive_times_are_utc() -> None:
    naive = dt.datetime(2026, 1, 1, 12, 0)
    event = emit_event("t", {"fluvial.resource.id": "r"}, occurred=naive)
    assert event.occurred == naive.replace(tzinfo=dt.UTC)
    assert json.loads(event.model_dump_json())["event"] == "t"
