"""The seed example: fetch customer ids, then process every customer in parallel.

    python examples/customers.py             # threads (the default runner)
    python examples/customers.py dask        # a local Dask cluster
    python examples/customers.py ray         # a local Ray session
    python examples/customers.py processes   # local worker processes
"""

from __future__ import annotations

import random
import sys

from fluvial import flow, task


@task
def get_customer_ids() -> list[str]:
    # Fetch customer IDs from a database or API
    return [f"customer{n}" for n in random.choices(range(100), k=10)]


@task
def process_customer(customer_id: str) -> str:
    # Process a single customer
    return f"Processed {customer_id}"


@flow
def main() -> list[str]:
    customer_ids = get_customer_ids()
    # Map the process_customer task across all customer IDs
    results = process_customer.map(customer_ids)
    return results.result()


def runner_named(name: str):
    if name == "threads":
        from fluvial.runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    if name == "processes":
        from fluvial.runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=2)
    if name == "dask":
        from fluvial.runners.dask import DaskTaskRunner

        return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})
    if name == "ray":
        from fluvial.runners.ray import RayTaskRunner

        return RayTaskRunner(init_kwargs={"num_cpus": 2})
    raise SystemExit(f"unknown runner {name!r}: threads, processes, dask or ray")


if __name__ == "__main__":
    names = sys.argv[1:] or ["threads"]
    for name in names:
        print(f"--- {name} ---")
        for line in main.with_options(task_runner=runner_named(name))():
            print(line)
