"""Driver orchestration: what runs in the process that owns the flow run.

``flow_engine`` runs a flow; ``submission`` turns ``Task.submit``/``map`` calls into
``Submission`` records for a runner; ``tracking`` counts a flow run's task runs and
which failed; ``recording`` tells the run record; ``resume`` is what ``fluvial runs
retry`` needs; ``admission`` takes tag slots before a run is dispatched;
``parameters`` validates a flow's arguments. It sits above the runners and below the
user API (``tasks``, ``flows``).
"""
