"""``Block``: a pydantic model saved by name in the run record, as in ``prefect.blocks.core``.

A block type is a subclass; its slug (``_block_type_slug``, default: the class
name in kebab case) and name identify a saved document::

    Secret(value="s3cr3t").save("db-password")
    Secret.load("db-password").get()
    Block.load("secret/db-password")        # any registered type, by slug

Fields whose value is a pydantic secret (``SecretStr``, ``SecretBytes``,
``Secret[...]``, :data:`fluvial.blocks.fields.SecretDict`) are encrypted with the
key from :mod:`fluvial.blocks._keys` before they reach the database; every other
field is stored as JSON. Secrets are found among a block's own fields (a secret
nested inside a list or dict field is not: make the whole field a secret, e.g.
``SecretDict``). A subclass is registered when it is defined; loading a
type this process has not imported uses the class path recorded by ``save`` or by
``fluvial block register -m module``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from fluvial.exceptions import BlockError, BlockNotFoundError, EncryptionKeyError

__all__ = ["Block", "block_class"]

B = TypeVar("B", bound="Block")

_ENCRYPTED = "$fluvial_encrypted"
_NAME = re.compile(r"^[a-z0-9-]+$")
_registry: dict[str, type[Block]] = {}


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"block name must be a string, got {type(name).__name__}")
    if not _NAME.match(name):
        raise ValueError(
            f"invalid block name {name!r}: use lowercase letters, digits and dashes"
        )
    return name


def _is_secret(value: Any) -> bool:
    return hasattr(value, "get_secret_value") and type(value).__module__.startswith("pydantic")


class Block(BaseModel):
    """Base class of every block type; subclass it with pydantic fields."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    _block_type_slug: ClassVar[str | None] = None
    _block_type_name: ClassVar[str | None] = None
    _block_is_abstract: ClassVar[bool] = False  # a base for other types, never saved itself
    _block_document_name: str | None = PrivateAttr(default=None)
    _block_document_id: UUID | None = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.__dict__.get("_block_is_abstract", False):
            _registry[cls.get_block_type_slug()] = cls

    @classmethod
    def get_block_type_slug(cls) -> str:
        """The type's slug: ``_block_type_slug``, else the class name in kebab case."""
        slug = cls.__dict__.get("_block_type_slug")
        if isinstance(slug, str) and slug:
            return slug
        return _kebab(cls._block_type_name or cls.__name__).replace(" ", "-")

    @classmethod
    def get_block_type_name(cls) -> str:
        return cls.__dict__.get("_block_type_name") or cls.__name__

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    @classmethod
    def register_type_and_schema(cls) -> None:
        """Record this type's class path and JSON schema, so any process can load it by slug."""
        from fluvial.store import catalog

        catalog.register_block_type(cls.get_block_type_slug(), cls.class_path(),
                                    cls.model_json_schema())

    # ------------------------------------------------------------------ save / load

    def save(self, name: str, overwrite: bool = False) -> UUID:
        """Store this block under ``name``; a name that exists needs ``overwrite=True``."""
        from fluvial.store import catalog

        name = _check_name(name)
        slug = self.get_block_type_slug()
        if slug == "block":
            raise BlockError("save a subclass of Block, not Block itself")
        data = self._encode()
        type(self).register_type_and_schema()
        row = catalog.put_block(slug, name, data, overwrite)
        if row is None:
            raise ValueError(
                f"block {slug}/{name} already exists; pass overwrite=True to replace it"
            )
        self._block_document_name = name
        self._block_document_id = UUID(row.id)
        return self._block_document_id

    @classmethod
    def load(cls: type[B], name: str, validate: bool = True) -> B:
        """The block saved as ``name`` (``"slug/name"`` when called on ``Block`` itself)."""
        from fluvial.store import catalog

        slug, name = cls._split(name)
        row = catalog.get_block(slug, name)
        if row is None:
            raise BlockNotFoundError(f"no block {slug}/{name} in the run record")
        klass: type[Block] = block_class(slug) if cls is Block else cls
        data = klass._decode(row.data, f"{slug}/{name}")
        if validate:
            try:
                block = klass.model_validate(data)
            except ValidationError as exc:
                fields = ", ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                raise BlockError(
                    f"block {slug}/{name} does not match {klass.__name__}'s fields ({fields}); "
                    "load it with validate=False to see what is stored"
                ) from None  # the error would print the (decrypted) input values
        else:
            block = klass.model_construct(**data)
        block._block_document_name = name
        block._block_document_id = UUID(row.id)
        return block  # type: ignore[return-value]

    @classmethod
    def delete(cls, name: str) -> bool:
        """Remove the block saved as ``name``; False when there was none."""
        from fluvial.store import catalog

        slug, name = cls._split(name)
        return catalog.delete_block(slug, name)

    @classmethod
    def _split(cls, name: str) -> tuple[str, str]:
        if not isinstance(name, str):
            raise TypeError(f"block name must be a string, got {type(name).__name__}")
        if cls is Block:
            slug, sep, rest = name.partition("/")
            if not sep:
                raise ValueError(
                    f"Block.load needs 'block-type-slug/name', got {name!r}; "
                    "or call load on the block's class"
                )
            return slug, _check_name(rest)
        if "/" in name:  # "secret/x" on Secret itself is fine too
            slug, _, rest = name.partition("/")
            if slug != cls.get_block_type_slug():
                raise ValueError(f"{name!r} is not a {cls.get_block_type_slug()} block")
            name = rest
        return cls.get_block_type_slug(), _check_name(name)

    # ------------------------------------------------------------------ encoding

    def _encode(self) -> dict[str, Any]:
        """Field values as JSON, with every secret encrypted."""
        out: dict[str, Any] = {}
        fernet = None
        for field in type(self).model_fields:
            value = getattr(self, field)
            if _is_secret(value):
                if fernet is None:
                    from fluvial.blocks._keys import cipher

                    fernet = cipher(create=True)
                plain = _json(value.get_secret_value(), f"{type(self).__name__}.{field}")
                out[field] = {_ENCRYPTED: fernet.encrypt(plain.encode()).decode()}
            elif isinstance(value, Block):
                out[field] = {"$block_type_slug": value.get_block_type_slug(),
                              "data": value._encode()}
            else:
                out[field] = self.model_dump(mode="json", include={field})[field]
        return out

    @classmethod
    def _decode(cls, data: dict[str, Any], where: str) -> dict[str, Any]:
        import json

        out: dict[str, Any] = {}
        fernet = None
        for field, value in data.items():
            if isinstance(value, dict) and _ENCRYPTED in value:
                if fernet is None:
                    from fluvial.blocks._keys import cipher

                    fernet = cipher(create=False)
                out[field] = json.loads(_decrypt(fernet, value[_ENCRYPTED], where, field))
            elif isinstance(value, dict) and "$block_type_slug" in value:
                nested = block_class(value["$block_type_slug"])
                out[field] = nested.model_validate(nested._decode(value["data"], where))
            else:
                out[field] = value
        return out


def _json(value: Any, where: str) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: a secret value must be JSON to be stored: {exc}") from None


def _decrypt(fernet: Any, token: str, where: str, field: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken:
        raise EncryptionKeyError(
            f"cannot decrypt field {field!r} of block {where}: the encryption key is not the "
            "one it was saved with (check FLUVIAL_ENCRYPTION_KEY or the key file)"
        ) from None


def block_class(slug: str) -> type[Block]:
    """The class registered for ``slug``: defined in this process, or imported by class path."""
    klass = _registry.get(slug)
    if klass is not None:
        return klass
    _import_builtins()
    klass = _registry.get(slug)
    if klass is not None:
        return klass
    from fluvial.store import catalog

    found = catalog.block_type(slug)
    if found is None:
        raise BlockNotFoundError(
            f"unknown block type {slug!r}: import the module that defines it, or run "
            "`fluvial block register -m <module>`"
        )
    module, _, qualname = found[0].partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise BlockError(
            f"block type {slug!r} is defined by {found[0]}, which cannot be imported here: {exc}"
        ) from exc
    return obj  # type: ignore[no-any-return]


def _import_builtins() -> None:
    importlib.import_module("fluvial.blocks.system")
    importlib.import_module("fluvial.filesystems")
    importlib.import_module("fluvial.blocks.webhook")


def registered_types() -> dict[str, type[Block]]:
    """Every block type this process knows (built-ins included)."""
    _import_builtins()
    return dict(_registry)
