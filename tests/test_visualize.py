"""``Flow.visualize()`` / ``Flow.generate_mermaid_graph()`` (issue 9, item 9): the task
graph of a flow, traced with placeholders — no task runs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fluvial import flow, task, unmapped
from fluvial.visualization import FlowVisualizationError

ran: list[str] = []


@task
def get_customer_ids() -> list[str]:
    ran.append("get_customer_ids")
    return [f"customer{n}" for n in random.choices(range(100), k=10)]


@task
def process_customer(customer_id: str, prefix: str = "") -> str:
    ran.append("process_customer")
    return f"{prefix}Processed {customer_id}"


@task
def summarize(results: list[str]) -> int:
    ran.append("summarize")
    return len(results)


@task
def notify(count: int) -> None:
    ran.append("notify")


@flow
def customers() -> int:
    ids = get_customer_ids()
    results = process_customer.map(ids, prefix=unmapped("> "))
    total = summarize.submit(results)
    notify(total.result(), wait_for=[results])
    return total.result()


def test_the_seed_example_as_mermaid_without_running_tasks(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # visualize() renders customers.png here when graphviz is in
    ran.clear()
    text = customers.generate_mermaid_graph()
    assert ran == []
    assert text.splitlines() == [
        "flowchart TD",
        '    n0["get_customer_ids"]',
        '    n1[["process_customer ×?"]]',
        '    n2["summarize"]',
        '    n3["notify"]',
        "    n0 --> n1",
        "    n1 --> n2",
        "    n2 --> n3",
        "    n1 -.-> n3",
    ]
    assert customers.visualize() == text
    assert capsys.readouterr().out.strip() == text
    assert ran == []


def test_a_map_over_a_known_list_shows_its_count_and_parameters_apply(tmp_path):
    @task
    def load(path: str) -> str:
        ran.append("load")
        return Path(path).read_text()

    @flow
    def batch(paths: list[str], repeat: int = 2) -> list[str]:
        texts = load.map(paths)
        again = [load.submit(p) for p in paths[:repeat]]
        return [*texts.result(), *(f.result() for f in again)]

    ran.clear()
    text = batch.generate_mermaid_graph(["a", "b", "c"], repeat=1)
    assert '[["load ×3"]]' in text and '["load (2)"]' in text
    assert "-->" not in text  # no task consumes another here
    assert ran == []


def test_subflows_are_one_node_and_the_record_is_untouched():
    @flow
    def child(x: int) -> int:
        return x

    @flow
    def parent() -> int:
        value = get_customer_ids()
        return child(value)

    ran.clear()
    text = parent.generate_mermaid_graph()
    assert '(["child (subflow)"])' in text and "n0 --> n1" in text
    assert ran == []


def test_async_flows_and_tasks_are_traced():
    @task
    async def fetch(n: int) -> int:
        ran.append("fetch")
        return n

    @flow
    async def gather_flow() -> int:
        first = await fetch(1)
        return await fetch(first)

    ran.clear()
    assert gather_flow.generate_mermaid_graph().endswith("n0 --> n1")
    assert ran == []


def test_flow_code_that_needs_real_values_gets_a_clear_error():
    @task
    def number() -> int:
        return 3

    @flow
    def arithmetic() -> int:
        return number() + 1

    with pytest.raises(FlowVisualizationError, match="arithmetic.*placeholders"):
        arithmetic.generate_mermaid_graph()
    with pytest.raises(TypeError, match="visualize"):
        customers.generate_mermaid_graph(1, 2, 3)


def test_without_graphviz_visualize_still_prints_mermaid(tmp_path, monkeypatch):
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "graphviz", None)  # graphviz absent: import fails
    assert customers.visualize().startswith("flowchart TD")
    assert list(tmp_path.iterdir()) == []  # nothing rendered


def test_with_graphviz_visualize_renders_the_graph(tmp_path, monkeypatch):
    """graphviz (the package, and Debian's ``dot``, installed by ``make test``) renders
    the same graph: one node per call, a mapped call as one box with its count."""
    monkeypatch.chdir(tmp_path)
    text = customers.visualize(filename="graph", format="png")
    png = tmp_path / "graph.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    source = customers.visualize(filename="graph", format="gv")
    assert source == text
    dot = (tmp_path / "graph.gv").read_text()
    assert "process_customer" in dot and "box3d" in dot  # the map, drawn as one node
    assert "->" in dot
