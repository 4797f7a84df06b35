"""The JSON API under ``/api/``: one module per resource (runs, deployments, platform)."""
