"""The cyclic garbage collector around big maps (fluvial.orchestration.collector).

A map of BURST runs or more inside a flow run freezes what it allocated until the
flow run ends; the application's own freeze is left alone; a map outside a flow, or a
small one, freezes nothing; cyclic garbage made by the map's tasks is collected once
the flow run is over.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from fluvial import flow, task
from fluvial.orchestration.collector import BURST
from fluvial.runners import ThreadPoolTaskRunner


@pytest.fixture(autouse=True)
def _no_freeze_around() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


@task
def echo(i: int) -> int:
    return i


class Node:
    """Half of a reference cycle: freed only by the cyclic collector."""

    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_big_map_is_frozen_during_its_flow_run_and_thawed_after() -> None:
    seen: dict[str, int] = {}

    @flow(task_runner=ThreadPoolTaskRunner(2))
    def big() -> int:
        futures = echo.map(range(BURST))
        seen["frozen while the flow runs"] = gc.get_freeze_count()
        return sum(futures.result())

    assert big() == sum(range(BURST))
    assert seen["frozen while the flow runs"] >= BURST  # at least one object per run
    assert gc.get_freeze_count() == 0


def test_a_small_map_or_a_map_outside_a_flow_freezes_nothing() -> None:
    seen: dict[str, int] = {}

    @flow(task_runner=ThreadPoolTaskRunner(2))
    def small() -> None:
        echo.map(range(BURST - 1)).result()
        seen["small"] = gc.get_freeze_count()

    small()
    assert seen["small"] == 0
    assert echo.map(range(BURST)).result()[-1] == BURST - 1
    assert gc.get_freeze_count() == 0


def test_the_applications_own_freeze_is_left_alone() -> None:
    frozen_by_app = Node()
    gc.freeze()
    before = gc.get_freeze_count()

    @flow(task_runner=ThreadPoolTaskRunner(2))
    def big() -> None:
        echo.map(range(BURST)).result()

    big()
    after = gc.get_freeze_count()  # (frozen objects freed meanwhile leave the count)
    assert before - 1000 < after <= before  # not thawed by the flow, not added to
    assert frozen_by_app.other is None


def test_cycles_made_by_a_big_maps_tasks_are_collected_after_the_flow() -> None:
    refs: list[weakref.ref] = []

    @task
    def cycle(i: int) -> None:
        a, b = Node(), Node()
        a.other, b.other = b, a
        if i % 100 == 0:
            refs.append(weakref.ref(a))

    @flow(task_runner=ThreadPoolTaskRunner(2))
    def cyclic() -> None:
        cycle.map(range(BURST)).result()

    cyclic()
    gc.collect()
    assert refs and all(ref() is None for ref in refs)


def test_two_flow_runs_thaw_only_when_both_have_ended() -> None:
    from fluvial.orchestration.collector import allocation_burst, thaw

    with allocation_burst(BURST, "first"):
        pass
    with allocation_burst(BURST, "second"):
        pass
    thaw("first")
    assert gc.get_freeze_count() > 0
    thaw("second")
    assert gc.get_freeze_count() == 0
