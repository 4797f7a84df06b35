"""``fluvial server``: a JSON API and a live web UI over the run record (``pip install 'fluvial[server]'``).

    fluvial server start [--host 127.0.0.1] [--port 4200] [--no-scheduler]

Modules: ``app`` (the ASGI app and its guard middleware), ``security`` (bind rule,
token, sessions, Host/Origin/CSRF checks), ``db`` (per-thread connections),
``queries`` (keyset-paginated reads), ``api/`` (one module per resource),
``ui/`` (pages, rendering, the live stream), ``background`` (the scheduler and the
automations evaluator the server runs), ``templates/`` and ``static/`` (htmx, vendored
and pinned). Nothing here is imported by ``import fluvial``.
"""
