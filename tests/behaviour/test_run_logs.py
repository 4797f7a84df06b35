"""What a task run logs (``get_run_logger()``, ``print`` with ``log_prints``) is in the run
record once, on every runner: on Dask and Ray workers the lines come back to the driver
with the run's outcome (completed or failed, independent or fed by an upstream)."""

from __future__ import annotations

from fluvial import flow, get_run_context, get_run_logger, task
from fluvial.store import get_recorder, queries


@task(log_prints=True)
def shout(x: int) -> int:
    get_run_logger().info("logged %d", x)
    print("printed", x)
    return x


@task
def after(x: int) -> int:
    get_run_logger().warning("after %d", x)
    return x + 1


@task
def fails(x: int) -> int:
    get_run_logger().error("about to fail %d", x)
    raise ValueError("no")


@task
def quiet(x: int) -> int:
    return x


def test_task_run_logs_are_recorded_once_on_every_runner(runner) -> None:
    @flow(task_runner=runner)
    def chatty() -> object:
        shouted = shout.map(range(3))
        followed = after.submit(shouted[0])
        failed = fails.submit(7)
        quiet.map(range(3)).result()
        followed.wait()
        failed.wait()
        return get_run_context().flow_run.id

    flow_run_id = chatty()
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()
    lines = [(r.level, r.message.rsplit(" - ", 1)[-1]) for r in queries.logs(flow_run_id)]
    task_lines = sorted(line for line in lines if not line[1].startswith("Task run"))
    assert task_lines == sorted([
        *((20, f"logged {i}") for i in range(3)),
        *((20, f"printed {i}") for i in range(3)),
        (30, "after 0"),
        (40, "about to fail 7"),
    ])
    by_run = {r.run_id for r in queries.logs(flow_run_id) if "logged" in r.message}
    assert len(by_run) == 3  # each line on its own task run


@task
def tick(x: int) -> int:
    get_run_logger().info("tick %d", x)
    return x


def test_logs_of_a_big_map_are_recorded_once_on_every_runner(runner) -> None:
    """The second map of a measured-fast task goes to Dask and Ray in batches."""

    @flow(task_runner=runner)
    def ticking() -> object:
        tick.map(range(20)).result()
        tick.map(range(20, 220)).result()
        return get_run_context().flow_run.id

    flow_run_id = ticking()
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()
    ticks = [int(r.message.rsplit(" ", 1)[1]) for r in queries.logs(flow_run_id)
             if " - tick " in r.message]
    assert sorted(ticks) == list(range(220))


@task
def prints(x: int) -> int:
    print("from the task", x)
    return x


def test_a_flows_log_prints_reaches_its_tasks_on_every_runner(runner) -> None:
    """``@flow(log_prints=True)`` turns ``print`` into log lines in tasks that leave
    ``log_prints`` unset, wherever they run (Prefect's rule), and is in the record."""

    @flow(task_runner=runner, log_prints=True)
    def printing() -> object:
        prints.map(range(3)).result()
        return get_run_context().flow_run.id

    flow_run_id = printing()
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()
    printed = sorted(r.message.rsplit(" - ", 1)[-1] for r in queries.logs(flow_run_id)
                     if "from the task" in r.message)
    assert printed == [f"from the task {i}" for i in range(3)]
