"""``prefect.client``'s import paths that user code writes for type hints:
``fluvial.client.schemas`` (``FlowRun``, ``TaskRun``, ``State``). fluvial needs no
client to run flows; these re-export the run records and states."""
