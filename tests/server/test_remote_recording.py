"""Remote recording (``FLUVIAL_API_URL``): a flow run records through a real server process.

The server is ``python -m fluvial.server`` on 127.0.0.1 with its own home and record,
requiring its token; the flow runs in this test's process, whose own home must stay
without a database. Rows are checked through the server's API and in its SQLite file.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from remote_helpers import ServerProcess

import fluvial.store as store
from fluvial import flow, get_run_logger, task


@pytest.fixture
def remote(live_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, home: Path
           ) -> ServerProcess:
    monkeypatch.setenv("FLUVIAL_API_URL", live_server.url)
    monkeypatch.setenv("FLUVIAL_API_TOKEN", live_server.token)
    store._reset_for_tests()
    return live_server


@task
def square(x: int) -> int:
    get_run_logger().info("square of %d", x)
    return x * x


@task
def add_up(values: list[int]) -> int:
    return sum(values)


@flow(log_prints=True)
def squares(n: int) -> int:
    print("adding up", n, "squares")
    return add_up.submit(square.map(range(n))).result()


def test_a_flow_run_records_through_the_server(remote: ServerProcess, home: Path) -> None:
    assert squares(5) == 30
    store._reset_for_tests()  # closes the recorder: everything sent
    [run] = remote.get("/api/flow_runs")["items"]
    assert (run["flow_name"], run["state_type"]) == ("squares", "COMPLETED")
    detail = remote.get(f"/api/flow_runs/{run['id']}")
    assert [s["type"] for s in detail["states"]] == ["RUNNING", "COMPLETED"]
    tasks = remote.get(f"/api/flow_runs/{run['id']}/task_runs")["items"]
    assert len(tasks) == 6 and {t["state_type"] for t in tasks} == {"COMPLETED"}
    assert [(e["upstream"].rsplit(".", 1)[-1], e["downstream"].rsplit(".", 1)[-1], e["count"])
            for e in detail["edges"]] == [("square", "add_up", 5)]
    messages = [entry["message"] for entry in remote.get(f"/api/flow_runs/{run['id']}/logs")]
    assert any(m.endswith("adding up 5 squares") for m in messages)
    assert sorted(m.rsplit(" - ", 1)[1] for m in messages if "square of" in m) == [
        f"square of {i}" for i in range(5)]
    # the server's own record holds it; this process opened no database
    assert remote.rows("SELECT count(*) FROM task_runs") == [(6,)]
    assert not (home / "fluvial.db").exists()


def test_a_wrong_token_is_refused_before_the_run_starts(
        live_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from fluvial.exceptions import ApiAuthError

    monkeypatch.setenv("FLUVIAL_API_URL", live_server.url)
    monkeypatch.setenv("FLUVIAL_API_TOKEN", "not-the-token")
    ran = []

    @flow
    def noted() -> None:
        ran.append(1)

    with pytest.raises(ApiAuthError, match="refused .* FLUVIAL_API_TOKEN .*HTTP 401"):
        noted()
    assert ran == []
    assert "not-the-token" not in capsys.readouterr().err
    monkeypatch.delenv("FLUVIAL_API_TOKEN")
    with pytest.raises(ApiAuthError, match="with no token"):
        noted()
    assert live_server.get("/api/flow_runs")["items"] == []


@task
def slow_square(x: int) -> int:
    get_run_logger().info("slow square of %d", x)
    time.sleep(0.02)
    return x * x


@flow
def slow_squares(n: int) -> int:
    total = 0
    for i in range(n):  # one after the other: the run spans the server's restart
        total += slow_square(i)
    return total


def test_a_server_restart_mid_run_loses_and_doubles_nothing(remote: ServerProcess) -> None:
    n = 150
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(slow_squares(n)))
    runner.start()
    time.sleep(0.6)
    assert runner.is_alive(), "the run ended before the server was stopped"
    remote.stop()
    time.sleep(1.0)  # batches pile up and fail meanwhile
    down_while_running = runner.is_alive()
    remote.start()
    runner.join(120)
    assert result == [sum(i * i for i in range(n))]
    recorder = store.get_recorder()
    assert recorder is not None
    writer = recorder._writer
    store._reset_for_tests()  # close: the journal (if any) is sent before it returns
    assert down_while_running
    assert writer is not None and writer.seq >= 3  # several batches, some sent while down
    assert writer.failed_posts >= 1
    [run] = remote.get("/api/flow_runs")["items"]
    assert run["state_type"] == "COMPLETED"
    assert remote.rows("SELECT count(*), count(DISTINCT id) FROM task_runs") == [(n, n)]
    assert remote.rows("SELECT count(*) FROM task_runs WHERE state_type = 'COMPLETED'") == [(n,)]
    logged = remote.rows("SELECT message FROM logs WHERE message LIKE '%slow square of%'")
    assert sorted(int(m.rsplit(" ", 1)[1]) for (m,) in logged) == list(range(n))
    # every task run's history once: Running, Completed
    assert remote.rows("SELECT count(*) FROM state_history h JOIN task_runs t ON t.id = "
                       "h.run_id") == [(2 * n,)]
    assert remote.rows("SELECT type FROM state_history WHERE run_id = ? ORDER BY ts",
                       run["id"]) == [("RUNNING",), ("COMPLETED",)]


def test_a_batch_sent_twice_is_applied_once(live_server: ServerProcess) -> None:
    import uuid

    from fluvial.store.writer.batch import LOG, TASK_RUN_DONE
    from fluvial.store.writer.received import header
    from fluvial.store.writer.wire import encode

    run_id = uuid.uuid4()
    batch = [header("c" * 32, 1, 1234, "elsewhere"),
             (TASK_RUN_DONE, run_id, None, "t", "t-key", ["a"], 1.0, "COMPLETED", "Completed",
              None, 2.0, False),
             (LOG, run_id, 20, "once", 1.5)]
    body = encode(batch)[4:]
    headers = {"authorization": f"Bearer {live_server.token}",
               "content-type": "application/octet-stream"}
    first = httpx.post(live_server.url + "/api/record", content=body, headers=headers)
    again = httpx.post(live_server.url + "/api/record", content=body, headers=headers)
    assert first.json() == {"applied": True, "skipped": 0}
    assert again.json() == {"applied": False, "skipped": 0}
    assert live_server.rows("SELECT count(*) FROM logs WHERE message = 'once'") == [(1,)]
    assert live_server.rows("SELECT count(*) FROM state_history WHERE run_id = ?",
                       str(run_id)) == [(2,)]
    bad = httpx.post(live_server.url + "/api/record", content=b"not a pickle", headers=headers)
    assert bad.status_code == 400 and "not a fluvial batch" in bad.json()["detail"]
    missing = httpx.post(live_server.url + "/api/record", content=encode([("x",)])[4:],
                         headers=headers)
    assert missing.status_code == 400 and "header" in missing.json()["detail"]
    refused = httpx.post(live_server.url + "/api/record", content=body,
                         headers={"content-type": "application/octet-stream"})
    assert refused.status_code == 401


def test_batches_kept_while_the_server_is_down_are_sent_by_the_next_process(
        live_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that gives up (the server stayed down) leaves its journal; the next
    recorder that opens replays it, and replaying twice writes nothing twice."""
    import os
    import socket
    import uuid

    from fluvial.store.remote import ApiClient, HttpBatchWriter
    from fluvial.store.writer.batch import LOG

    monkeypatch.setenv("FLUVIAL_API_URL", live_server.url)
    monkeypatch.setenv("FLUVIAL_API_TOKEN", live_server.token)
    token = live_server.token
    live_server.stop()
    writer = HttpBatchWriter(ApiClient(live_server.url, token), os.getpid(), socket.gethostname())
    writer.retry_seconds = 0.2
    run_id = uuid.uuid4()
    assert writer.commit([(LOG, run_id, 20, "kept 1", 1.0)]) == (0, None)
    assert writer.commit([(LOG, run_id, 20, "kept 2", 2.0)]) == (0, None)
    assert writer.journal.pending == 2
    writer.close(drain_seconds=0.2)  # still down: the journal stays on disk
    live_server.start()
    store._reset_for_tests()
    recorder = store.get_recorder()  # opens: replays the journal it finds
    assert recorder is not None
    assert live_server.rows("SELECT message FROM logs ORDER BY ts") == [("kept 1",), ("kept 2",)]
    store._reset_for_tests()
    store.get_recorder()
    assert live_server.rows("SELECT count(*) FROM logs") == [(2,)]
