"""The encryption key for secret block fields, and the Fernet cipher built on it.

The key is never stored in the database: it comes from ``FLUVIAL_ENCRYPTION_KEY``
(a Fernet key: 32 url-safe base64-encoded bytes) or from the key file
``$FLUVIAL_HOME/encryption.key``, created on the first save of a secret with mode
0600. Losing the key makes the secrets unreadable (a clear error, never garbage);
to share secrets across machines, give every machine the same key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fluvial.exceptions import EncryptionKeyError

__all__ = ["cipher", "key_file"]

ENV_VAR = "FLUVIAL_ENCRYPTION_KEY"


def key_file() -> Path:
    """``$FLUVIAL_HOME/encryption.key``."""
    from fluvial import settings

    return settings.home() / "encryption.key"


def _fernet(key: bytes, source: str) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.strip())
    except (ValueError, TypeError) as exc:
        raise EncryptionKeyError(
            f"{source} is not a valid encryption key (expected a Fernet key: 32 url-safe "
            "base64-encoded bytes, as `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'` prints)"
        ) from exc


def cipher(create: bool) -> Any:
    """The Fernet cipher for secret fields.

    ``create=True`` (saving) writes a new key file when there is no key yet;
    ``create=False`` (loading) raises :class:`EncryptionKeyError` instead.
    """
    from fluvial import settings

    env = settings.get().encryption_key
    if env:
        return _fernet(env.encode(), ENV_VAR)
    path = key_file()
    try:
        return _fernet(path.read_bytes(), f"the key file {path}")
    except FileNotFoundError:
        if not create:
            raise EncryptionKeyError(
                f"no encryption key: set {ENV_VAR} or restore the key file {path} "
                "that the secret was saved with"
            ) from None
    except OSError as exc:
        raise EncryptionKeyError(f"cannot read the key file {path}: {exc}") from exc
    return _fernet(_create_key_file(path), f"the key file {path}")


def _create_key_file(path: Path) -> bytes:
    from cryptography.fernet import Fernet

    from fluvial._files import private_dir

    private_dir(path.parent)
    key = Fernet.generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a key another process made first
    except FileExistsError:
        key = path.read_bytes()
    finally:
        tmp.unlink()
    return key
