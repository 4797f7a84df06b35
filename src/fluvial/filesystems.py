"""Filesystem blocks, as ``prefect.filesystems``: ``LocalFileSystem`` and ``RemoteFileSystem``.

    fs = LocalFileSystem(basepath="/data/results"); fs.save("results")
    fs.write_path("a/b.bin", b"...");  fs.read_path("a/b.bin")
    RemoteFileSystem(basepath="s3://bucket/prefix", settings={"key": ..., "secret": ...})

``RemoteFileSystem`` goes through fsspec, so every protocol fsspec knows works
(``memory://``, ``file://``, ``s3://`` with s3fs installed, ...). A filesystem
block (or its ``"local-file-system/name"`` slug) can be a task's or flow's
``result_storage``. Paths are relative to ``basepath``; a path that leaves it
(``../``) is refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fluvial.blocks.core import Block
from fluvial.blocks.fields import SecretDict

__all__ = ["LocalFileSystem", "RemoteFileSystem", "WritableFileSystem", "filesystem_block"]


class WritableFileSystem(Block):
    """What result storage needs of a filesystem block."""

    _block_is_abstract: ClassVar[bool] = True

    def read_path(self, path: str) -> bytes:
        raise NotImplementedError

    def write_path(self, path: str, content: bytes) -> str:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def delete_path(self, path: str) -> bool:
        raise NotImplementedError


class LocalFileSystem(WritableFileSystem):
    """Files under a local directory."""

    _block_type_slug: ClassVar[str | None] = "local-file-system"

    basepath: str | None = Field(default=None, description="Default: the current directory.")

    def base_directory(self) -> Path:
        """The basepath as an absolute directory (the current one when unset)."""
        return Path(self.basepath).expanduser().resolve() if self.basepath else Path.cwd()

    def _resolve(self, path: str | None) -> Path:
        base = self.base_directory()
        if path is None:
            return base
        resolved = (base / Path(path).expanduser()).resolve()
        if resolved != base and base not in resolved.parents:
            raise ValueError(f"path {path!r} is outside the filesystem's basepath {str(base)!r}")
        return resolved

    def read_path(self, path: str) -> bytes:
        target = self._resolve(path)
        if not target.is_file():
            raise ValueError(f"{str(target)!r} does not exist or is not a file")
        return target.read_bytes()

    def write_path(self, path: str, content: bytes) -> str:
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)
        return str(target)

    def exists(self, path: str) -> bool:
        return self._resolve(path).exists()

    def delete_path(self, path: str) -> bool:
        try:
            self._resolve(path).unlink()
        except FileNotFoundError:
            return False
        return True

    def put_directory(self, local_path: str | None = None, to_path: str | None = None,
                      ignore_file: str | None = None) -> int:
        """Copy a local directory (default: the current one) into ``to_path``; files copied."""
        source = Path(local_path or ".").resolve()
        target = self._resolve(to_path)
        ignore = _ignore_patterns(ignore_file)
        copied = 0
        for file in _files(source, ignore):
            dest = target / file.relative_to(source)
            if dest.resolve() == file:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, dest)
            copied += 1
        return copied

    def get_directory(self, from_path: str | None = None, local_path: str | None = None) -> None:
        """Copy ``from_path`` (default: the basepath) into a local directory."""
        source = self._resolve(from_path)
        shutil.copytree(source, Path(local_path or ".").resolve(), dirs_exist_ok=True)


class RemoteFileSystem(WritableFileSystem):
    """Files on any fsspec filesystem, named by URL (``s3://bucket/prefix``, ``memory://x``)."""

    _block_type_slug: ClassVar[str | None] = "remote-file-system"

    basepath: str = Field(description="A URL with a scheme, e.g. s3://bucket/path.")
    settings: SecretDict = Field(default_factory=lambda: SecretDict({}),
                                 description="Keyword arguments for the fsspec filesystem.")

    def model_post_init(self, __context: Any) -> None:
        scheme, sep, _ = self.basepath.partition("://")
        if not sep or not scheme:
            raise ValueError(f"basepath {self.basepath!r} must be a URL with a scheme, "
                             "e.g. s3://bucket/path or memory://name")

    @property
    def filesystem(self) -> Any:
        import fsspec

        protocol = self.basepath.partition("://")[0]
        return fsspec.filesystem(protocol, **self.settings.get_secret_value())

    def _resolve(self, path: str | None) -> str:
        base = self.basepath.rstrip("/")
        if path is None:
            return base
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ValueError(f"path {path!r} is outside the filesystem's basepath {base!r}")
        return "/".join([base, *parts])

    def read_path(self, path: str) -> bytes:
        with self.filesystem.open(self._resolve(path), "rb") as file:
            return file.read()  # type: ignore[no-any-return]

    def write_path(self, path: str, content: bytes) -> str:
        target = self._resolve(path)
        fs = self.filesystem
        parent = target.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        with fs.open(target, "wb") as file:
            file.write(content)
        return target

    def exists(self, path: str) -> bool:
        return bool(self.filesystem.exists(self._resolve(path)))

    def delete_path(self, path: str) -> bool:
        target = self._resolve(path)
        fs = self.filesystem
        if not fs.exists(target):
            return False
        fs.rm(target)
        return True

    def put_directory(self, local_path: str | None = None, to_path: str | None = None,
                      ignore_file: str | None = None) -> int:
        source = Path(local_path or ".").resolve()
        target = self._resolve(to_path)
        fs = self.filesystem
        copied = 0
        for file in _files(source, _ignore_patterns(ignore_file)):
            dest = f"{target}/{file.relative_to(source).as_posix()}"
            fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(file), dest)
            copied += 1
        return copied

    def get_directory(self, from_path: str | None = None, local_path: str | None = None) -> None:
        source = self._resolve(from_path)
        dest = Path(local_path or ".").resolve()
        fs = self.filesystem
        for remote in fs.find(source):
            relative = remote[len(fs._strip_protocol(source)):].lstrip("/")
            out = dest / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(out))


def filesystem_block(ref: str) -> WritableFileSystem | None:
    """The filesystem block a ``"block-type/name"`` string names; None when ``ref`` does not
    name a filesystem block type (it is then a directory path)."""
    import re

    from fluvial.blocks.core import block_class
    from fluvial.exceptions import BlockNotFoundError

    if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9-]+", ref):
        return None
    slug, _, name = ref.partition("/")
    try:
        klass = block_class(slug)
    except BlockNotFoundError:
        return None  # not a block type: a relative directory
    if not issubclass(klass, WritableFileSystem):
        raise TypeError(f"result storage {ref!r} names a {slug} block, not a filesystem")
    return klass.load(name)  # a missing block is an error, never a directory by that name


def _ignore_patterns(ignore_file: str | None) -> list[str]:
    if not ignore_file:
        return []
    lines = Path(ignore_file).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _files(source: Path, ignore: list[str]) -> list[Path]:
    import fnmatch

    out = []
    for file in sorted(source.rglob("*")):
        if not file.is_file():
            continue
        rel = file.relative_to(source).as_posix()
        if any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(file.name, pat) for pat in ignore):
            continue
        out.append(file)
    return out
