"""The web UI: server-rendered pages (``pages``), rendering (``render``), the live stream (``stream``)."""
