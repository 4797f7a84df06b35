"""Field types for blocks: ``SecretDict``, a dict whose whole value is secret.

Like ``prefect.blocks.fields.SecretDict``: shown as ``**********``, encrypted at
rest with the block's other secrets; ``.get_secret_value()`` gives the dict.
"""

from __future__ import annotations

from typing import Any

from pydantic import Secret

__all__ = ["SecretDict"]

SecretDict = Secret[dict[str, Any]]
