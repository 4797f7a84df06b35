"""Task run ids are time-ordered (UUID version 7), so the record's indexes append."""

from __future__ import annotations

import pickle
import time
import uuid

import pytest

from fluvial import flow, task
from fluvial.runs import time_ordered_id
from fluvial.store import get_recorder, queries


def _millis(run_id: uuid.UUID) -> int:
    return run_id.int >> 80


def test_a_time_ordered_id_is_an_ordinary_version_7_uuid():
    before = time.time_ns() // 1_000_000
    run_id = time_ordered_id()
    after = time.time_ns() // 1_000_000
    assert run_id.version == 7 and run_id.variant == uuid.RFC_4122
    assert before <= _millis(run_id) <= after
    same = uuid.UUID(str(run_id))
    assert same == run_id and hash(same) == hash(run_id)
    assert uuid.UUID(int=run_id.int) == run_id and uuid.UUID(bytes=run_id.bytes) == run_id
    assert pickle.loads(pickle.dumps(run_id)) == run_id
    assert {run_id: 1}[same] == 1
    with pytest.raises(TypeError):
        run_id.int = 0  # type: ignore[misc]  # immutable, like any UUID


def test_ids_sort_in_creation_order_as_text_and_bytes():
    ids = [time_ordered_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    stamps = [i.int >> 64 for i in ids]  # milliseconds and the fraction of one
    assert stamps == sorted(stamps)
    # ids made in different ticks are ordered however they are compared
    for a, b in zip(ids, ids[1:], strict=False):
        if a.int >> 64 < b.int >> 64:
            assert str(a) < str(b) and a.bytes < b.bytes and a < b
    # and their ends (a default run name's digits) are random: no two alike here
    assert len({i.hex[-8:] for i in ids}) > len(ids) * 0.99


@task
def noop(x: int) -> int:
    return x


def test_a_maps_task_runs_get_time_ordered_ids_and_names_from_their_random_end():
    @flow
    def mapped():
        from fluvial.context import get_run_context

        noop.map(range(50)).result()
        return get_run_context().flow_run.id

    flow_run_id = mapped()
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()
    runs = queries.task_runs(flow_run_id)
    assert len(runs) == 50
    for run in runs:
        assert run.id.version == 7
        assert run.name == f"noop-{run.id.hex[-8:]}"
