"""ResultStore: atomic, self-describing records; damaged records fail with the file named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from serialization_helpers import assert_same, make_record

from fluvial.serialization import (
    RecordMeta,
    ResultRecordError,
    ResultStore,
    SerializationError,
    default_storage_dir,
)


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(tmp_path / "results")


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


VALUE = {"rows": [(1, "a"), (2, "b")], "at": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)}


@pytest.mark.parametrize("serializer", ["msgpack", "json", "cloudpickle", "compressed/msgpack"])
def test_write_then_read_needs_no_serializer(store: ResultStore, serializer: str) -> None:
    path = store.write("key1", VALUE, serializer)
    assert path == store.directory / "key1" and path.is_file()
    assert_same(store.read("key1"), VALUE)
    assert store.read_meta("key1").serializer == serializer


def test_default_serializer_falls_back_to_cloudpickle(store: ResultStore) -> None:
    store.write("plain", VALUE)
    store.write("object", Point(3))
    assert store.read_meta("plain").serializer == "msgpack"
    assert store.read_meta("object").serializer == "cloudpickle"
    assert store.read("object").x == 3


def test_read_meta_reports_header_fields(store: ResultStore) -> None:
    expires = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    before = datetime.now(UTC)
    store.write("k", b"x" * 100, "msgpack", expires_at=expires)
    meta = store.read_meta("k")
    assert isinstance(meta, RecordMeta)
    assert meta.key == "k" and meta.path == store.path_for("k")
    assert before - timedelta(seconds=1) <= meta.created_at <= datetime.now(UTC)
    assert meta.expires_at == expires and meta.size > 100
    assert not meta.is_expired()
    assert meta.is_expired(now=expires)
    store.write("forever", 1)
    assert store.read_meta("forever").expires_at is None
    assert not store.read_meta("forever").is_expired()


def test_naive_expiry_is_rejected(store: ResultStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.write("k", 1, expires_at=datetime(2030, 1, 1))


def test_exists_delete_and_overwrite(store: ResultStore) -> None:
    assert not store.exists("k")
    assert store.delete("k") is False
    store.write("k", 1)
    store.write("k", 2)
    assert store.exists("k") and store.read("k") == 2
    assert store.delete("k") is True
    assert not store.exists("k")
    assert [p.name for p in store.directory.iterdir()] == []  # no temp files left behind


@pytest.mark.parametrize("key", ["", "a/b", "a\\b", "..", ".hidden", "x\0y", "k" * 256])
def test_invalid_keys_are_rejected(store: ResultStore, key: str) -> None:
    for call in (store.read, store.exists, store.delete, lambda k: store.write(k, 1)):
        with pytest.raises(ValueError, match="invalid result key"):
            call(key)


def test_failed_serialization_leaves_no_file(store: ResultStore) -> None:
    store.write("k", "old")
    with pytest.raises(SerializationError):
        store.write("k", threading.Lock(), "cloudpickle")
    with pytest.raises(ValueError, match="unknown serializer"):
        store.write("k", 1, "nope")
    assert store.read("k") == "old"
    assert [p.name for p in store.directory.iterdir()] == ["k"]


def test_missing_record_names_the_file(store: ResultStore) -> None:
    with pytest.raises(ResultRecordError, match="is missing") as info:
        store.read("absent")
    assert str(store.path_for("absent")) in str(info.value)
    assert info.value.path == store.path_for("absent")
    with pytest.raises(ResultRecordError, match="is missing"):
        store.read_meta("absent")


def _cut_points(size: int, header_end: int) -> list[int]:
    return [0, 3, 10, 13, header_end - 1, header_end, header_end + 1, size - 1]


def test_truncated_records_are_reported(store: ResultStore) -> None:
    path = store.write("k", list(range(1000)), "msgpack")
    data = path.read_bytes()
    header_end = 13 + int.from_bytes(data[5:9], "big")
    for cut in _cut_points(len(data), header_end):
        path.write_bytes(data[:cut])
        with pytest.raises(ResultRecordError, match="truncated") as info:
            store.read("k")
        assert str(path) in str(info.value), cut
        with pytest.raises(ResultRecordError, match="truncated"):
            store.read_meta("k")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: b"XXXX" + d[4:], "not a fluvial result record"),
        (lambda d: d[:4] + b"\x09" + d[5:], "unsupported record version 9"),
        (lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], "header checksum"),
        (lambda d: d[:-5] + bytes([d[-5] ^ 0x01]) + d[-4:], "payload checksum"),
        (lambda d: d + b"junk", "unexpected bytes"),
        (lambda d: d[:5] + b"\xff\xff\xff\xff" + d[9:], "implausible"),
    ],
)
def test_corrupted_records_are_reported(store: ResultStore, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = store.write("k", {"a": list(range(100))}, "msgpack")
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(ResultRecordError, match=reason) as info:
        store.read("k")
    assert str(path) in str(info.value)


def test_unknown_serializer_and_undecodable_payload(store: ResultStore) -> None:
    import zlib

    store.directory.mkdir(parents=True)
    header = {"created_at": "2024-01-01T00:00:00+00:00", "expires_at": None}
    payload = b"\xc1"  # a byte msgpack never uses
    for key, name, reason in [
        ("a", "yaml", "serializer 'yaml', unknown"),
        ("b", "msgpack", "cannot be decoded"),
    ]:
        record = make_record(
            {**header, "serializer": name, "size": 1, "crc32": zlib.crc32(payload)}, payload
        )
        (store.directory / key).write_bytes(record)
        with pytest.raises(ResultRecordError, match=reason):
            store.read(key)
    (store.directory / "c").write_bytes(make_record({"serializer": "msgpack"}, b""))
    with pytest.raises(ResultRecordError, match="unreadable header"):
        store.read_meta("c")


def test_result_record_error_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(ResultRecordError("/x/y", "is missing")))
    assert str(error) == "result record '/x/y' is missing" and error.path == Path("/x/y")


def test_default_storage_dir_reads_env_at_call_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path))
    assert default_storage_dir() == tmp_path / "storage"
    assert ResultStore().directory == tmp_path / "storage"
    monkeypatch.delenv("FLUVIAL_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_storage_dir() == tmp_path / "home" / ".fluvial" / "storage"


def test_fsync_mode_writes_the_same_record(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, fsync=True)
    store.write("k", VALUE)
    assert_same(store.read("k"), VALUE)


# --- crash safety: a writer killed with SIGKILL ------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from fluvial.serialization import ResultStore

    store = ResultStore(sys.argv[1])
    if sys.argv[2] == "pause-before-replace":
        def paused_replace(src, dst):
            print("written", flush=True)
            time.sleep(60)
        os.replace = paused_replace
        store.write("k", "new" * 100_000, "msgpack")
    else:  # rewrite the record in a loop until killed
        big = {"payload": "x" * 2_000_000}
        for i in range(10_000):
            big["i"] = i
            store.write("k", big, "compressed/json" if i % 2 else "msgpack")
            if i == 0:
                print("written", flush=True)
    """
)

needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")


def start_writer(directory: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@needs_sigkill
def test_writer_killed_before_replace_leaves_no_record(store: ResultStore) -> None:
    proc = start_writer(store.directory, "pause-before-replace")
    kill(proc)
    assert any(p.name.startswith(".tmp-") for p in store.directory.iterdir())  # it was mid-write
    assert not store.exists("k")
    with pytest.raises(ResultRecordError, match="is missing"):
        store.read("k")


@needs_sigkill
def test_writer_killed_before_replace_leaves_the_old_record(store: ResultStore) -> None:
    store.write("k", "old")
    proc = start_writer(store.directory, "pause-before-replace")
    kill(proc)
    assert store.read("k") == "old"


@needs_sigkill
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03])
def test_writer_killed_at_any_moment_leaves_a_whole_record(
    store: ResultStore, delay: float
) -> None:
    proc = start_writer(store.directory, "loop")
    threading.Event().wait(delay)
    kill(proc)
    value = store.read("k")  # never a torn record: always one complete write
    assert value["payload"] == "x" * 2_000_000 and isinstance(value["i"], int)
