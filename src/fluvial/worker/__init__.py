"""The worker engine: one task run, wherever it runs (a pool thread, a worker process,
a Dask worker, a Ray worker).

``task_engine`` is the state machine of one task run (upstream checks, retries,
timeouts, caching, hooks); ``arguments`` puts upstream results into its arguments;
``caching``, ``timeouts`` and ``hooks`` are its parts. Everything here sits above the
core (states, runs, futures, context) and below the runners: it never imports a
runner, the driver's orchestration or the user API.
"""
