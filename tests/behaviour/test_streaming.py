"""Streaming maps (issue 15): ``.map`` over an iterator with ``max_in_flight``, consumed
with ``as_completed``; bounded on every runner, nothing held that was not asked for."""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from pathlib import Path

import pytest

import fluvial
from fluvial import flow, task
from fluvial.exceptions import MappingLengthMismatch
from fluvial.futures import FutureList
from fluvial.orchestration.streaming import FutureStream


@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def touch(i: int, where: str) -> int:
    Path(where, str(i)).write_text("")
    return i


class Counted:
    """An iterator over range(n) that says how many items were read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.read = 0

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> int:
        if self.read >= self.n:
            raise StopIteration
        self.read += 1
        return self.read - 1


def test_a_stream_yields_every_run_as_completed_with_a_bound(runner):
    items = Counted(60)

    @flow(task_runner=runner)
    def streamed():
        stream = square.map(items, max_in_flight=8)
        assert isinstance(stream, FutureStream)
        assert items.read <= 8  # map() read only what it submitted
        seen, most_ahead = [], 0
        for future in fluvial.as_completed(stream):
            seen.append(future.result())  # taken: read - taken = runs still open
            most_ahead = max(most_ahead, items.read - len(seen))
        return sorted(seen), most_ahead, stream.peak_open

    seen, most_ahead, peak_open = streamed()
    assert seen == [i * i for i in range(60)]
    assert most_ahead <= 8  # never more than max_in_flight read ahead of the consumer
    assert peak_open == 8


def test_result_is_in_input_order_and_iterating_is_as_completed(runner):
    @flow(task_runner=runner)
    def ordered():
        in_order = square.map((i for i in range(25)), max_in_flight=4).result()
        taken = [f.result() for f in square.map(iter(range(10)), max_in_flight=3)]
        states = square.map(iter(range(5)), max_in_flight=2, return_state=True)
        return in_order, sorted(taken), [s.result() for s in states]

    in_order, taken, states = ordered()
    assert in_order == [i * i for i in range(25)]
    assert taken == [i * i for i in range(10)]
    assert states == [0, 1, 4, 9, 16]


def test_iterators_of_different_lengths_fail_after_the_runs_already_submitted(runner):
    @flow(task_runner=runner)
    def mismatched():
        got: list[int] = []
        with pytest.raises(MappingLengthMismatch) as info:
            for future in add.map(iter(range(3)), iter(range(5)), max_in_flight=2):
                got.append(future.result())
        return sorted(got), str(info.value)

    got, message = mismatched()
    assert got == [0, 2, 4]  # the runs read before the end are delivered, not lost
    assert "'add'" in message and "argument 0 ran out after 3" in message
    assert "argument 1" in message


def test_an_input_that_raises_stops_the_map_after_the_runs_already_submitted(runner):
    def broken():
        yield from range(4)
        raise RuntimeError("the source broke")

    @flow(task_runner=runner)
    def failing():
        got: list[int] = []
        with pytest.raises(RuntimeError, match="the source broke"):
            for future in square.map(broken(), max_in_flight=3):
                got.append(future.result())
        return sorted(got)

    assert failing() == [0, 1, 4, 9]


def test_a_stream_nobody_consumes_still_runs_to_the_end(runner, tmp_path: Path):
    @flow(task_runner=runner)
    def fire_and_forget():
        square.map(iter(range(3)), max_in_flight=1)
        touch.map((i for i in range(40)), fluvial.unmapped(str(tmp_path)), max_in_flight=5)
        return "returned"

    assert fire_and_forget() == "returned"
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(40))


def test_the_runner_default_bound_streams_maps_over_iterators_only(runner):
    # (runners take it as max_in_flight=...; the shared test runner gets it set here)
    runner.max_in_flight = 6

    @flow(task_runner=runner)
    def defaults():
        items = Counted(30)
        stream = square.map(items)
        eager = square.map([1, 2, 3])
        first_read = items.read
        total = sum(f.result() for f in fluvial.as_completed(stream))
        return type(stream), first_read, total, type(eager), eager.result()

    try:
        kind, first_read, total, eager_kind, eager = defaults()
    finally:
        runner.max_in_flight = None
    assert kind is FutureStream and first_read == 6
    assert total == sum(i * i for i in range(30))
    assert eager_kind is FutureList and eager == [1, 4, 9]


def test_without_a_bound_a_generator_maps_eagerly_as_in_prefect():
    @flow
    def eager():
        futures = square.map(i for i in range(5))
        return type(futures), futures.result()

    assert eager() == (FutureList, [0, 1, 4, 9, 16])


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), ("4", TypeError),
                                        (2.5, TypeError), (True, TypeError)])
def test_a_bad_bound_is_refused_naming_the_task(bad, error):
    @flow
    def refused():
        square.map(iter(range(3)), max_in_flight=bad)

    with pytest.raises(error, match="square.*max_in_flight"):
        refused()
    with pytest.raises(error, match="ThreadPoolTaskRunner.*max_in_flight"):
        fluvial.runners.ThreadPoolTaskRunner(max_in_flight=bad)


def test_runners_keep_their_default_bound_for_subflows():
    from fluvial.runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from fluvial.runners.dask import DaskTaskRunner
    from fluvial.runners.ray import RayTaskRunner

    for made in (ThreadPoolTaskRunner(2, max_in_flight=7), ProcessPoolTaskRunner(2, max_in_flight=7),
                 DaskTaskRunner(max_in_flight=7), RayTaskRunner(max_in_flight=7)):
        assert made.max_in_flight == 7 and made.duplicate().max_in_flight == 7


def test_a_bad_first_call_raises_from_map_before_anything_runs():
    read = Counted(10)

    @flow
    def bad_call():
        with pytest.raises(TypeError, match="square"):
            square.map(read, iter(range(10)), iter(range(10)), max_in_flight=4)
        return read.read

    assert bad_call() == 1


def test_taken_futures_are_not_kept_by_the_stream():
    alive: list[weakref.ref] = []

    @flow
    def dropping():
        stream = square.map(iter(range(300)), max_in_flight=10)
        for future in fluvial.as_completed(stream):
            alive.append(weakref.ref(future))
            future.result()
        del future
        gc.collect()
        return sum(ref() is not None for ref in alive)

    assert dropping() == 0


def _driver_held(n: int) -> int:
    """The most memory fluvial's own code holds (allocated in fluvial's modules: runs,
    futures, the stream) at ten points of a stream of ``n`` items. Other threads of the
    test process (a Dask client, Ray) are left out, and so is the run record's queue of
    events to write (bounded on its own: see the next test)."""
    fluvial_code = [tracemalloc.Filter(True, "*/fluvial/*"),
                    tracemalloc.Filter(False, "*/fluvial/store/*")]

    @flow
    def measured():
        tracemalloc.start()
        stream = square.map(iter(range(n)), max_in_flight=100)
        most = 0
        for i, future in enumerate(fluvial.as_completed(stream)):
            future.result()
            if i % (n // 10) == n // 20:
                snapshot = tracemalloc.take_snapshot().filter_traces(fluvial_code)
                most = max(most, sum(t.size for t in snapshot.traces))
        tracemalloc.stop()
        return most

    return measured()


def test_driver_memory_does_not_grow_with_the_length_of_the_map():
    _driver_held(500)  # warm: first-use allocations are not the map's
    small, large = _driver_held(2_000), _driver_held(20_000)
    print(f"\nheld by fluvial: {small / 1e3:.0f} kB during a map of 2 000 items, "
          f"{large / 1e3:.0f} kB during one of 20 000")
    # holding every run of the larger map would take megabytes (about 0.5 kB a run);
    # what varies is garbage waiting for the collector
    assert large <= 2 * small + 200_000


def test_a_stream_waits_while_the_run_record_is_far_behind():
    # the record's backlog is part of the bound: no inputs are read while it is too long
    from fluvial.orchestration import streaming

    backlog = [streaming.RECORD_BACKLOG + 1]
    items = Counted(20)

    def pending() -> int:
        backlog[0] = max(0, backlog[0] - 5_000)  # the writer catches up meanwhile
        return backlog[0] + (streaming.RECORD_BACKLOG if backlog[0] else 0)

    @flow
    def paced():
        stream = FutureStream("square", streaming.StreamInputs("square", [(items, False)], {}),
                              lambda args, kwargs: _submission(args), _submit, 5,
                              backlog=pending)
        return stream.result()

    assert paced() == [i * i for i in range(20)]
    assert backlog[0] == 0  # it asked until the backlog was gone before reading


def _submission(args):  # type: ignore[no-untyped-def]
    from fluvial.orchestration.submission import prepare
    from fluvial.runs import TaskRun

    return prepare(TaskRun(square, args, {}, frozenset(), None), [])


def _submit(subs):  # type: ignore[no-untyped-def]
    from fluvial.orchestration.submission import current_runner, dispatch

    runner, tracker, _ = current_runner()
    return dispatch(runner, tracker, subs)
