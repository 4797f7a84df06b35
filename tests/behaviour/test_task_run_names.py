"""Task run names: Prefect's default ``"{task name}-{short suffix}"`` tells the runs of a
mapped task apart, and ``task_run_name=`` templates (attribute access included) render
with the run's parameters, on every runner."""

from __future__ import annotations

import re

from fluvial import flow, task, unmapped
from fluvial.runtime import task_run


class Dataset:
    def __init__(self, name: str) -> None:
        self.name = name


@task
def double(x: int) -> str:
    return task_run.name


@task(task_run_name="train on {dataset.name} with {config}")
def train(dataset: Dataset, config: str) -> str:
    return task_run.name


@task(task_run_name="item-{x}")
def item(x: int) -> str:
    return task_run.name


@task
def load(name: str) -> Dataset:
    return Dataset(name)


@task(task_run_name=lambda: "from-a-callable")
def called() -> str:
    return task_run.name


def test_default_names_tell_mapped_runs_apart(runner):
    from fluvial.context import get_run_context
    from fluvial.store import get_recorder, queries

    @flow(task_runner=runner)
    def mapped():
        names = double.map(range(20)).result()
        return names, get_run_context().flow_run.id

    names, run_id = mapped()
    assert all(re.fullmatch(r"double-[0-9a-f]{8}", n) for n in names), names
    assert len(set(names)) == 20
    get_recorder().flush()
    recorded = sorted(r.name for r in queries.task_runs(run_id))
    assert recorded == sorted(names)  # the record and the worker agree


def test_templates_render_parameters_with_attribute_access(runner):
    @flow(task_runner=runner)
    def named():
        trained = train.map(dataset=Dataset("x"), config=["a", "b"]).result()
        items = item.map([1, 2]).result()
        keyword = train.submit(Dataset("y"), config="c").result()
        return trained, items, keyword, called.submit().result()

    trained, items, keyword, from_callable = named()
    assert trained == ["train on x with a", "train on x with b"]
    assert items == ["item-1", "item-2"]
    assert keyword == "train on y with c"
    assert from_callable == "from-a-callable"


def test_a_template_over_an_upstream_result_renders_where_the_run_runs(runner):
    @flow(task_runner=runner)
    def chained():
        data = load.submit("from-upstream")
        return train.submit(data, unmapped("d").value).result()

    assert chained() == "train on from-upstream with d"
