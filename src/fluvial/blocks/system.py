"""The built-in value blocks of ``prefect.blocks.system``: ``Secret``, ``JSON``, ``String``, ``DateTime``.

    Secret(value="s3cr3t").save("db-password")
    Secret.load("db-password").get()      # "s3cr3t"; repr and CLI show **********
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, JsonValue, SecretStr
from pydantic import Secret as PydanticSecret

from fluvial.blocks.core import Block

__all__ = ["JSON", "DateTime", "Secret", "String"]


class Secret(Block):
    """A secret value (a string, or any JSON value), encrypted at rest."""

    _block_type_slug: ClassVar[str | None] = "secret"

    value: SecretStr | PydanticSecret[JsonValue] = Field(
        description="A value that should be kept secret.")

    def get(self) -> Any:
        """The secret value itself."""
        return self.value.get_secret_value()


class JSON(Block):
    """A JSON value."""

    _block_type_slug: ClassVar[str | None] = "json"

    value: JsonValue = Field(description="A JSON-compatible value.")


class String(Block):
    """A string."""

    _block_type_slug: ClassVar[str | None] = "string"

    value: str = Field(description="A string value.")


class DateTime(Block):
    """A date and time."""

    _block_type_slug: ClassVar[str | None] = "date-time"

    value: datetime = Field(description="An ISO 8601-compatible datetime value.")
