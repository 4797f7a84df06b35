"""``make bench-peers``: the same flows on fluvial and on Prefect 3.8.8, side by side.

Prefect lives in its own virtualenv (``.venv-peers``, created by the Makefile target
with prefect==3.8.8, prefect-dask, prefect-ray and ``fastapi>=0.139,<0.145``), so it
never meets fluvial's dependencies. :mod:`benchmarks.peers.__main__` starts a
``prefect server start`` on 127.0.0.1 with a throwaway ``PREFECT_HOME``, runs each
workload's fluvial side in this process and its Prefect side in
:mod:`benchmarks.peers.prefect_side` (a script run by ``.venv-peers/bin/python``), and
prints fluvial / Prefect per workload. Not part of ``make bench`` or ``make test``.
"""
