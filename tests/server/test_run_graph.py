"""The edges between task runs (which upstream futures fed which run) are recorded and
drawn in the run page's graph, summarised per task: a map of 300 is one node and one edge
with its count."""

from __future__ import annotations

import re

from server_helpers import client

import fluvial.store as store
from fluvial import flow, get_run_context, task


@task
def square(x: int) -> int:
    return x * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@task
def report(value: int) -> str:
    return f"total {value}"


@task
def cleanup() -> None:
    return None


@flow
def pipeline() -> object:
    squares = square.map(range(300))
    summed = total.submit(squares)
    reported = report.submit(summed)
    cleanup.submit(wait_for=[reported]).wait()
    return get_run_context().flow_run.id


def test_edges_are_recorded_and_summarised_per_task() -> None:
    run_id = str(pipeline())
    recorder = store.get_recorder()
    assert recorder is not None
    recorder.flush()
    api = client()
    detail = api.get(f"/api/flow_runs/{run_id}").json()
    edges = {(e["upstream"].rsplit(".", 1)[-1], e["downstream"].rsplit(".", 1)[-1]): e["count"]
             for e in detail["edges"]}
    assert edges == {("square", "total"): 300, ("total", "report"): 1,
                     ("report", "cleanup"): 1}
    page = api.get(f"/runs/{run_id}").text
    graph = page[page.index('aria-label="task graph"'):]
    graph = graph[:graph.index("</svg>")]
    assert graph.count("<rect") == 4  # one node per task, not 303
    assert graph.count("<line") == 3
    assert re.search(r"<text[^>]*>300</text>", graph)  # the map's edge carries its count
    # laid out by start: each task one column right of the one that fed it
    xs = [float(x) for x in re.findall(r'<rect x="([\d.]+)"', graph)]
    assert xs == sorted(xs) and len(set(xs)) == 4


def test_a_run_without_upstreams_has_no_edges() -> None:
    @flow
    def flat() -> object:
        square.map(range(3)).result()
        return get_run_context().flow_run.id

    run_id = str(flat())
    recorder = store.get_recorder()
    assert recorder is not None
    recorder.flush()
    assert client().get(f"/api/flow_runs/{run_id}").json()["edges"] == []
