"""``Asset`` and ``AssetProperties``: what a materializing task produces, named by a URI key."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Asset", "AssetProperties", "asset_key"]

MAX_KEY_LENGTH = 512
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
_FORBIDDEN = set("'\"<>{}|\\^`")


class AssetProperties(BaseModel):
    """Descriptive properties of an asset (all optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    url: str | None = None
    description: str | None = None
    owners: list[str] | None = None


class Asset(BaseModel):
    """A data asset, identified by a URI ``key`` such as ``s3://bucket/path``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="A URI with a scheme, e.g. s3://bucket/orders.parquet")
    properties: AssetProperties | None = None

    @field_validator("key")
    @classmethod
    def _valid_key(cls, key: str) -> str:
        return asset_key(key)

    def add_metadata(self, metadata: dict[str, Any]) -> None:
        """Attach ``metadata`` to this asset's materialization by the current task run."""
        from fluvial.assets._materialize import add_asset_metadata

        add_asset_metadata(self, metadata)

    def __hash__(self) -> int:
        return hash(self.key)


def asset_key(key: object) -> str:
    """``key`` checked: a URI with a scheme, no spaces or quoting characters, ≤ 512 chars."""
    if not isinstance(key, str):
        raise TypeError(f"an asset key must be a string, got {type(key).__name__}")
    bad = sorted(_FORBIDDEN & set(key))
    if not _KEY.match(key) or bad or len(key) > MAX_KEY_LENGTH:
        detail = f" (it contains {''.join(bad)!r})" if bad else ""
        raise ValueError(
            f"invalid asset key {key!r}{detail}: use a URI with a scheme such as "
            f"s3://bucket/path, without spaces or quotes, at most {MAX_KEY_LENGTH} characters"
        )
    return key
