"""Filesystem blocks: a local directory and any fsspec filesystem, confined to their basepath."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluvial.blocks import Block
from fluvial.filesystems import LocalFileSystem, RemoteFileSystem


def test_local_file_system_reads_writes_and_copies_directories(tmp_path: Path) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path / "store"))
    fs.save("results")
    loaded = LocalFileSystem.load("results")
    written = loaded.write_path("a/b.bin", b"\x00data")
    assert Path(written) == tmp_path / "store" / "a" / "b.bin"
    assert loaded.read_path("a/b.bin") == b"\x00data"
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "keep.txt").write_text("k")
    (src / "sub" / "x.txt").write_text("x")
    (src / "skip.log").write_text("s")
    ignore = tmp_path / ".ignore"
    ignore.write_text("*.log\n")
    assert loaded.put_directory(str(src), "copy", ignore_file=str(ignore)) == 2
    out = tmp_path / "out"
    loaded.get_directory("copy", str(out))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "keep.txt", "sub/x.txt"]


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../escape.txt", "/etc/passwd"])
def test_paths_outside_the_basepath_are_refused(tmp_path: Path, path: str) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path / "base"))
    with pytest.raises(ValueError, match="outside the filesystem's basepath"):
        fs.write_path(path, b"x")
    assert not (tmp_path / "escape.txt").exists()


def test_remote_file_system_over_fsspec_memory() -> None:
    RemoteFileSystem(basepath="memory://bucket/prefix").save("mem")
    fs = Block.load("remote-file-system/mem")
    fs.write_path("x/y.txt", b"hello")
    assert fs.read_path("x/y.txt") == b"hello"
    assert fs.exists("x/y.txt") and not fs.exists("x/z.txt")
    with pytest.raises(ValueError, match="outside"):
        fs.read_path("../other/y.txt")
    assert fs.delete_path("x/y.txt") and not fs.exists("x/y.txt")


def test_remote_file_system_over_a_local_path_round_trips_directories(tmp_path: Path) -> None:
    fs = RemoteFileSystem(basepath=f"file://{tmp_path}/remote")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    assert fs.put_directory(str(src), "dir") == 1
    assert (tmp_path / "remote" / "dir" / "a.txt").read_text() == "a"
    fs.get_directory("dir", str(tmp_path / "back"))
    assert (tmp_path / "back" / "a.txt").read_text() == "a"


def test_remote_basepath_needs_a_scheme() -> None:
    with pytest.raises(ValueError, match="must be a URL with a scheme"):
        RemoteFileSystem(basepath="/no/scheme")
