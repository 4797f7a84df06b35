"""Round trips through the recorder: what the engine appends is what the store reads."""

from __future__ import annotations

import enum
import os
import socket
import time
import uuid

import pytest

import fluvial.store as store
from fluvial.store import queries
from fluvial.store.recorder import Recorder


def test_flow_run_round_trip(recorder: Recorder, make_flow_run) -> None:
    flow_run_id = make_flow_run(tasks=2)
    run = queries.get_flow_run(flow_run_id)
    assert run.id == flow_run_id
    assert (run.name, run.flow_name) == ("brave-otter", "etl")
    assert run.parameters == {"n": "2"}
    assert run.tags == ("nightly",)
    assert run.parent_task_run_id is None
    assert (run.pid, run.hostname) == (os.getpid(), socket.gethostname())
    assert (run.state_type, run.state_name, run.state_message) == ("COMPLETED", "Completed", None)
    assert run.start_time == pytest.approx(run.created + 0.1)
    assert run.end_time == pytest.approx(run.created + 2.3)
    assert run.duration == pytest.approx(2.2)
    assert run.heartbeat == run.created


def test_task_runs_and_state_history_round_trip(recorder: Recorder, make_flow_run) -> None:
    flow_run_id = make_flow_run(tasks=3, fail=1)
    tasks = queries.task_runs(flow_run_id)
    assert [t.name for t in tasks] == ["extract-0", "extract-1", "extract-2"]
    assert all(t.flow_run_id == flow_run_id and t.task_key == "extract" for t in tasks)
    assert all(t.tags == ("io",) for t in tasks)
    assert [t.state_type for t in tasks] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert tasks[1].state_message == "ValueError: bad row 7"
    assert tasks[0].result_location == "/results/0"
    assert tasks[1].result_location is None
    assert tasks[0].duration == pytest.approx(0.49)
    history = queries.state_history(tasks[1].id)
    assert [(s.type, s.name) for s in history] == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("FAILED", "Failed"),
    ]
    assert history[-1].message == "ValueError: bad row 7"
    flow_history = queries.state_history(flow_run_id)
    assert [s.type for s in flow_history] == ["PENDING", "RUNNING", "FAILED"]


def test_logs_of_flow_and_task_runs_in_time_order(recorder: Recorder, make_flow_run) -> None:
    flow_run_id = make_flow_run(tasks=2)
    t = time.time() + 100
    recorder.log(flow_run_id, 40, "late flow message", t)
    recorder.log(flow_run_id, 10, "early flow message", 0.0)
    recorder.log(None, 20, "a log of no run", t)
    recorder.flush()
    records = queries.logs(flow_run_id)
    assert [r.message for r in records] == [
        "early flow message",
        "flow started",
        "task 0 working",
        "task 1 working",
        "late flow message",
    ]
    assert [r.task_run_name for r in records] == [None, None, "extract-0", "extract-1", None]
    assert records[-1].level == 40
    assert records[0].run_id == flow_run_id


def test_parameters_are_a_capped_summary(recorder: Recorder) -> None:
    class Unrepresentable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    params = {f"p{i}": i for i in range(60)}
    params.update(
        p0="x" * 10_000, p1=list(range(1_000_000)), p2=Unrepresentable(), p3={"a": [1, {"b": 2}]}
    )
    flow_run_id = uuid.uuid4()
    recorder.flow_run_created(flow_run_id, "r", "f", params, (), None, time.time())
    recorder.flush()
    summary = queries.get_flow_run(flow_run_id).parameters
    assert len(summary) == 51
    assert summary["..."] == "10 more parameters"
    assert all(len(v) <= 200 for v in summary.values())
    assert summary["p0"].startswith("'xxx")
    assert summary["p1"].startswith("[0, 1, 2")
    assert summary["p2"].startswith("<Unrepresentable instance")
    assert summary["p3"] == "{'a': [1, {'b': 2}]}"
    assert summary["p49"] == "49"


def test_subflow_records_parent_task_run(recorder: Recorder) -> None:
    parent_task = uuid.uuid4()
    child = uuid.uuid4()
    recorder.flow_run_created(child, "child", "sub", {}, set(), parent_task, time.time())
    recorder.flush()
    assert queries.get_flow_run(child).parent_task_run_id == parent_task


def test_state_for_unknown_run_does_not_crash_and_is_applied_when_the_run_appears(
    recorder: Recorder,
) -> None:
    task_id, flow_run_id = uuid.uuid4(), uuid.uuid4()
    t = time.time()
    recorder.state(task_id, "RUNNING", "Running", None, t + 1)
    recorder.state(task_id, "COMPLETED", "Completed", None, t + 2)
    recorder.state(flow_run_id, "RUNNING", "Running", None, t + 1)
    recorder.flush()
    assert [s.type for s in queries.state_history(task_id)] == ["RUNNING", "COMPLETED"]
    # the rows arrive later (as from another process): they pick up their history
    recorder.task_run_created(task_id, flow_run_id, "late", "k", (), t)
    recorder.flow_run_created(flow_run_id, "late", "f", {}, (), None, t)
    recorder.flush()
    task = queries.task_runs(flow_run_id)[0]
    assert (task.state_type, task.start_time, task.end_time) == ("COMPLETED", t + 1, t + 2)
    assert queries.get_flow_run(flow_run_id).state_type == "RUNNING"


def test_states_across_batches_keep_the_latest_by_timestamp(recorder: Recorder) -> None:
    task_id = uuid.uuid4()
    t = time.time()
    recorder.task_run_created(task_id, None, "t", "k", (), t)
    recorder.state(task_id, "RUNNING", "Running", None, t + 2)
    recorder.flush()
    recorder.state(task_id, "COMPLETED", "Completed", "done", t + 5, "loc")
    recorder.flush()
    # a state with an older timestamp arriving late (another process) does not win
    recorder.state(task_id, "RUNNING", "Retrying", None, t + 1)
    recorder.flush()
    with store.connection.reading() as conn:
        row = conn.execute(
            "SELECT state_type, state_name, state_message, state_ts, start_time, end_time, "
            "result_location FROM task_runs WHERE id = ?",
            (str(task_id),),
        ).fetchone()
    assert row == ("COMPLETED", "Completed", "done", t + 5, t + 1, t + 5, "loc")


def test_state_type_may_be_an_enum(recorder: Recorder) -> None:
    class StateType(enum.Enum):
        COMPLETED = "COMPLETED"

    task_id = uuid.uuid4()
    recorder.task_run_created(task_id, None, "t", "k", (), time.time())
    recorder.state(task_id, StateType.COMPLETED, "Completed", None, time.time())
    recorder.flush()
    assert queries.state_history(task_id)[0].type == "COMPLETED"


def test_a_malformed_event_is_skipped_without_losing_the_batch(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    good = uuid.uuid4()
    recorder.task_run_created(good, None, "good", "k", (), time.time())
    recorder.state(uuid.uuid4(), "RUNNING", "Running", None, "not a timestamp")  # type: ignore[arg-type]
    recorder.state(good, "COMPLETED", "Completed", None, time.time())
    recorder.flush()
    assert [s.type for s in queries.state_history(good)] == ["COMPLETED"]
    assert recorder.events_dropped == 1
    assert "malformed event" in caplog.text


def test_heartbeat_moves_forward(recorder: Recorder) -> None:
    flow_run_id = uuid.uuid4()
    recorder.flow_run_created(flow_run_id, "r", "f", {}, (), None, 1000.0)
    recorder.flush()
    before = time.time()
    recorder.heartbeat(flow_run_id)
    recorder.flush()
    assert queries.get_flow_run(flow_run_id).heartbeat >= before


def test_get_recorder_is_a_singleton_per_store(home, tmp_path, monkeypatch) -> None:
    first = store.get_recorder()
    assert first is store.get_recorder()
    assert store.store_path() == home / "fluvial.db"
    assert store.store_path().exists()
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path / "other"))
    second = store.get_recorder()
    assert second is not first and first.closed
    assert store.store_path() == tmp_path / "other" / "fluvial.db"


@pytest.mark.parametrize("value", ["off", "0", "false", "no", "OFF", " No "])
def test_store_off_gives_no_recorder(monkeypatch, home, value: str) -> None:
    monkeypatch.setenv("FLUVIAL_STORE", value)
    assert store.get_recorder() is None
    assert not (home / "fluvial.db").exists()
    monkeypatch.setenv("FLUVIAL_STORE", "on")
    assert store.get_recorder() is not None


def test_close_flushes_and_later_events_are_discarded(recorder: Recorder) -> None:
    task_id = uuid.uuid4()
    recorder.task_run_created(task_id, None, "t", "k", (), time.time())
    recorder.close()
    recorder.close()  # idempotent
    assert recorder.closed and recorder.pending == 0
    recorder.state(task_id, "RUNNING", "Running", None, time.time())  # no error, no growth
    assert recorder.pending == 0
    with pytest.raises(RuntimeError, match="closed recorder"):
        recorder.flush()
    assert queries.state_history(task_id) == []
    with store.connection.reading() as conn:
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone() == (1,)
    assert store.get_recorder() is not recorder  # a closed singleton is replaced


def test_threshold_wakes_the_writer_before_the_interval(backend) -> None:
    rec = Recorder(interval=60, wake_at=100)
    try:
        for _ in range(100):
            rec.task_run_created(uuid.uuid4(), None, "t", "k", (), time.time())
        deadline = time.time() + 10
        while rec.events_committed < 100 and time.time() < deadline:
            time.sleep(0.01)
        assert rec.events_committed == 100
    finally:
        rec.close()


def test_recorder_arguments_are_checked(home) -> None:
    with pytest.raises(ValueError, match="interval must be greater than 0"):
        Recorder(interval=0)
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        Recorder(max_batch=0)


def test_forked_child_does_not_write_the_parents_queue(recorder: Recorder) -> None:
    recorder.task_run_created(uuid.uuid4(), None, "parent", "k", (), time.time())
    pid = os.fork()
    if pid == 0:  # child: the inherited recorder is dead; a new one works
        code = 0
        try:
            assert store._instance is None and recorder.closed
            child = store.get_recorder()
            assert child is not recorder
            child.task_run_created(uuid.uuid4(), None, "child", "k", (), time.time())
            child.close()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    recorder.flush()
    with store.connection.reading() as conn:
        names = sorted(r[0] for r in conn.execute("SELECT name FROM task_runs"))
    assert names == ["child", "parent"]


def test_task_run_finished_is_one_event_for_the_whole_run(recorder: Recorder) -> None:
    flow_run_id, done, unstarted = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recorder.flow_run_created(flow_run_id, "f-1", "f", {}, (), None, 100.0)
    recorder.task_run_finished(done, flow_run_id, "load-1", "m.load", frozenset({"db"}),
                               101.0, "COMPLETED", "Cached", "hit", 101.5)
    recorder.task_run_finished(unstarted, flow_run_id, "after-1", "m.after", (), None,
                               "FAILED", "NotReady", "upstream failed", 102.0)
    recorder.flush()
    by_name = {t.name: t for t in queries.task_runs(flow_run_id)}
    load, after = by_name["load-1"], by_name["after-1"]
    assert (load.state_type, load.state_name, load.tags) == ("COMPLETED", "Cached", ("db",))
    assert load.duration == pytest.approx(0.5)
    assert [(s.type, s.ts) for s in queries.state_history(done)] == [
        ("RUNNING", 101.0), ("COMPLETED", 101.5)]
    assert (after.state_name, after.state_message, after.duration) == (
        "NotReady", "upstream failed", None)
    assert [s.name for s in queries.state_history(unstarted)] == ["NotReady"]
