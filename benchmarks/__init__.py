"""fluvial's benchmarks: ``python -m benchmarks`` (what ``make bench`` runs).

Each ``bench_*`` module measures one area and returns rows from ``run()``; the harness
(``benchmarks.harness``) times, compares with the raw backend, and writes
``benchmarks/results/latest.json`` and ``latest.md``. See ``benchmarks/README.md``.
"""
