"""The read API: listing, filtering and resolving run ids."""

from __future__ import annotations

import time
import uuid

import pytest

from fluvial.store import AmbiguousRunIdError, RunNotFoundError, queries


def test_list_flow_runs_newest_first_with_filters(make_flow_run) -> None:
    t = time.time()
    a = make_flow_run(flow_name="etl", start=t)
    b = make_flow_run(flow_name="report", start=t + 10, fail=0)
    c = make_flow_run(flow_name="etl", start=t + 20)
    assert [r.id for r in queries.list_flow_runs()] == [c, b, a]
    assert [r.id for r in queries.list_flow_runs(flow_name="etl")] == [c, a]
    assert [r.id for r in queries.list_flow_runs(state="failed")] == [b]
    assert [r.id for r in queries.list_flow_runs(state="Completed")] == [c, a]
    assert [r.id for r in queries.list_flow_runs(flow_name="etl", limit=1)] == [c]
    assert queries.list_flow_runs(flow_name="nope") == []
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        queries.list_flow_runs(limit=0)


def test_resolve_run_id(make_flow_run) -> None:
    run = make_flow_run(tasks=0)
    text = str(run)
    assert queries.resolve_run_id(text) == run
    assert queries.resolve_run_id(run) == run
    assert queries.resolve_run_id(text[:6].upper()) == run
    with pytest.raises(RunNotFoundError, match="no flow run id starts with"):
        queries.resolve_run_id("ffffffff-0000" if not text.startswith("ff") else "00000000-0")
    with pytest.raises(RunNotFoundError, match="is not a flow run id"):
        queries.resolve_run_id("not-a-uuid!")
    with pytest.raises(LookupError):
        queries.resolve_run_id("")


def test_ambiguous_prefix(recorder) -> None:
    ids = [uuid.UUID(f"abcd{i:04x}-0000-4000-8000-000000000000") for i in range(7)]
    for run_id in ids:
        recorder.flow_run_created(run_id, "r", "f", {}, (), None, time.time())
    recorder.flush()
    with pytest.raises(AmbiguousRunIdError, match="matches several flow runs") as info:
        queries.resolve_run_id("abcd")
    assert str(ids[0]) in str(info.value) and "..." in str(info.value)
    assert queries.resolve_run_id("abcd0003") == ids[3]


def test_get_flow_run_unknown(backend) -> None:
    with pytest.raises(RunNotFoundError):
        queries.get_flow_run(uuid.uuid4())
    assert queries.task_runs(uuid.uuid4()) == []
    assert queries.state_history(uuid.uuid4()) == []
    assert queries.logs(uuid.uuid4()) == []


def test_records_are_frozen(make_flow_run) -> None:
    run = queries.get_flow_run(make_flow_run(tasks=0))
    with pytest.raises(AttributeError):
        run.name = "x"  # type: ignore[misc]
