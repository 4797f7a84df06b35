"""The writer process: batches committed out of the driver, and every way it can end."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

import fluvial.store as store
from fluvial.exceptions import SettingsError
from fluvial.store import queries
from fluvial.store import recorder as _recorder
from fluvial.store.recorder import Recorder
from fluvial.store.writer import process as _writer_process
from fluvial.store.writer import wire as _wire


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def _wait_for_writer(rec: Recorder) -> int:
    rec.flush(timeout=30)
    pid = rec.writer_pid
    assert pid is not None, "no writer process"
    return pid


def test_flush_round_trips_through_the_writer_process(recorder: Recorder, make_flow_run) -> None:
    flow_run_id = make_flow_run(tasks=3)  # flushed
    pid = _wait_for_writer(recorder)
    writer = psutil.Process(pid)
    assert pid != os.getpid() and writer.ppid() == os.getpid()
    # it runs the writer entry point, not this test module
    assert "fluvial.store.writer.process" in " ".join(writer.cmdline())
    run = queries.get_flow_run(flow_run_id)
    assert run.state_type == "COMPLETED" and run.pid == os.getpid()  # the driver's pid
    assert len(queries.task_runs(flow_run_id)) == 3
    assert recorder.events_committed == 4 + 3 * 5 + 1  # the flow run, its tasks, its end
    task_id = uuid.uuid4()
    recorder.task_run_created(task_id, flow_run_id, "late", "k", ("a", "b"), time.time())
    recorder.flush(timeout=10)  # "everything appended so far is committed"
    assert [t.name for t in queries.task_runs(flow_run_id)].count("late") == 1


def test_values_cross_the_pipe_as_the_writer_would_store_them(recorder: Recorder) -> None:
    from enum import Enum

    class Kind(Enum):
        DONE = "COMPLETED"

    class Name:
        def __str__(self) -> str:
            return "custom-name"

    task_id = uuid.uuid4()
    recorder.task_run_created(task_id, None, Name(), "k", (t for t in ["x", "y"]), time.time())
    recorder.state(task_id, Kind.DONE, "Completed", None, time.time())
    recorder.flush(timeout=10)
    assert recorder.writer_pid is not None
    assert _task_run(task_id) == ("custom-name", '["x", "y"]', "COMPLETED")


def _task_run(task_id: uuid.UUID) -> tuple | None:
    with store.connection.reading() as conn:
        return conn.execute(
            "SELECT name, tags, state_type FROM task_runs WHERE id = ?", (str(task_id),)
        ).fetchone()


def test_close_stops_the_writer_process_and_leaks_none(backend: str) -> None:
    before = {p.pid for p in psutil.Process().children()}
    rec = Recorder()
    rec.task_run_created(uuid.uuid4(), None, "t", "k", (), time.time())
    pid = _wait_for_writer(rec)
    assert pid not in before
    rec.close()
    assert _gone(pid, timeout=1)
    assert {p.pid for p in psutil.Process().children()} <= before
    with store.connection.reading() as conn:
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone() == (1,)


def test_close_commits_what_was_appended_without_a_flush(home) -> None:
    rec = Recorder(interval=3600, wake_at=10**9)
    ids = [uuid.uuid4() for _ in range(1000)]
    for task_id in ids:
        rec.task_run_created(task_id, None, "t", "k", (), time.time())
    rec.close()
    with store.connection.reading() as conn:
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone() == (1000,)


def test_the_first_events_do_not_wait_for_the_process(home) -> None:
    started = time.perf_counter()
    rec = Recorder()
    for _ in range(100):
        rec.task_run_created(uuid.uuid4(), None, "t", "k", (), time.time())
    assert time.perf_counter() - started < 0.5  # the process starts in the background
    rec.flush(timeout=30)
    assert rec.events_committed == 100
    rec.close()


def test_a_writer_process_that_cannot_start_falls_back_to_a_thread(
    home, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_recorder, "_fallback_logged", False)
    monkeypatch.setattr(
        _writer_process, "command", lambda: [sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    with caplog.at_level(logging.WARNING, logger="fluvial.store"):
        recs = [Recorder(), Recorder()]
        for rec in recs:
            task_id = uuid.uuid4()
            rec.task_run_created(task_id, None, "t", "k", (), time.time())
            rec.state(task_id, "COMPLETED", "Completed", None, time.time())
            rec.flush(timeout=30)
            assert rec.writer_pid is None
            assert _task_run(task_id) == ("t", "[]", "COMPLETED")
            rec.close()
    fallbacks = [r for r in caplog.records if "from a thread instead" in r.getMessage()]
    assert len(fallbacks) == 1  # logged once per process
    assert "exited with status 3" in fallbacks[0].getMessage()


def test_no_interpreter_to_start_falls_back_to_a_thread(
    home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_recorder, "_fallback_logged", False)
    monkeypatch.setattr(sys, "executable", "")
    rec = Recorder()
    rec.task_run_created(uuid.uuid4(), None, "t", "k", (), time.time())
    rec.flush(timeout=30)
    assert rec.writer_pid is None and rec.events_committed == 1
    rec.close()


def test_the_thread_writer_can_be_chosen(home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUVIAL_STORE_WRITER", "thread")
    before = {p.pid for p in psutil.Process().children()}
    rec = store.get_recorder()
    assert rec is not None
    rec.task_run_created(uuid.uuid4(), None, "t", "k", (), time.time())
    rec.flush(timeout=10)
    assert rec.writer_pid is None and rec.events_committed == 1
    assert {p.pid for p in psutil.Process().children()} <= before
    monkeypatch.setenv("FLUVIAL_STORE_WRITER", "carrier-pigeon")
    store._reset_for_tests()
    with pytest.raises(SettingsError, match="FLUVIAL_STORE_WRITER"):
        store.get_recorder()


def test_a_writer_process_that_dies_is_replaced_by_a_thread(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_recorder, "_fallback_logged", False)
    first = uuid.uuid4()
    recorder.task_run_created(first, None, "before", "k", (), time.time())
    pid = _wait_for_writer(recorder)
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    deadline = time.time() + 10
    while recorder.writer_pid is not None and time.time() < deadline:
        time.sleep(0.01)  # the acknowledgement reader sees the end of the pipe
    second = uuid.uuid4()
    recorder.task_run_created(second, None, "after", "k", (), time.time())
    recorder.flush(timeout=30)
    assert recorder.writer_pid is None
    with store.connection.reading() as conn:
        names = sorted(r[0] for r in conn.execute("SELECT name FROM task_runs"))
    assert names == ["after", "before"]


def test_the_writer_process_ignores_ctrl_c(recorder: Recorder) -> None:
    pid = _wait_for_writer(recorder)
    os.kill(pid, signal.SIGINT)
    time.sleep(0.2)
    task_id = uuid.uuid4()
    recorder.task_run_created(task_id, None, "t", "k", (), time.time())
    recorder.flush(timeout=10)
    assert recorder.writer_pid == pid
    assert _task_run(task_id) == ("t", "[]", None)


def test_a_forked_child_does_not_keep_the_writer_process_alive(recorder: Recorder) -> None:
    pid = _wait_for_writer(recorder)
    child = os.fork()
    if child == 0:  # holds no copy of the pipe: the parent's close still ends the writer
        time.sleep(5)
        os._exit(0)
    try:
        started = time.time()
        recorder.close()
        assert _gone(pid, timeout=4) and time.time() - started < 4
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


DRIVER = """
import os, sys, time, uuid
import fluvial.store as store
rec = store.get_recorder()
run = uuid.uuid4()
rec.flow_run_created(run, "r", "f", {}, (), None, time.time())
rec.state(run, "RUNNING", "Running", None, time.time())
rec.flush()
print(run, rec.writer_pid, flush=True)
time.sleep(60)
"""


def test_the_writer_process_exits_when_its_driver_is_killed(backend: str, tmp_path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        run_id, writer_pid = proc.stdout.readline().split()
    finally:
        proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert _gone(int(writer_pid), timeout=10), "the writer process outlived its driver"
    assert store.recover() == [run_id]  # recovery is keyed on the driver's pid
    run = queries.get_flow_run(run_id)
    assert run.state_type == "CRASHED"
    assert run.state_message == f"driver process {proc.pid} died"


def test_frames_round_trip_and_a_cut_frame_is_an_error() -> None:
    read_fd, write_fd = os.pipe()
    try:
        run = uuid.uuid4()
        _wire.write_frame(write_fd, _wire.encode([(2, run, "RUNNING", "Running", None, 1.5, None)]))
        _wire.write_frame(write_fd, _wire.encode([]))
        frame = _wire.encode([(2, run, "COMPLETED", "Completed", None, 2.0, None)])
        os.write(write_fd, frame[:-3])
        os.close(write_fd)
        write_fd = -1
        reader = _wire.FrameReader(read_fd)
        assert reader.read() == [(2, str(run), "RUNNING", "Running", None, 1.5, None)]
        assert reader.read() == []
        with pytest.raises(_wire.WireError):
            reader.read()
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def test_the_writer_never_imports_the_senders_classes() -> None:
    class Local:  # a class the writer could not import
        pass

    decoded = _wire.decode(_wire.encode([(1, Local, Local(), b"x", 3)])[4:])
    (_, cls, obj, raw, n), = decoded
    assert "Local" in cls and "Local object" in obj and raw == b"x" and n == 3
