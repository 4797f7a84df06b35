"""Blocks: save/load by name, secrets encrypted with a key outside the database, never shown."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from pydantic import Field, SecretStr

from fluvial.blocks import Block
from fluvial.blocks.fields import SecretDict
from fluvial.blocks.system import JSON, DateTime, Secret, String
from fluvial.cli import main as cli
from fluvial.exceptions import BlockNotFoundError, EncryptionKeyError

SECRET = "hunter2-Sup3r-s3cret"


class Database(Block):
    """A block type defined by a user."""

    _block_type_slug: ClassVar[str | None] = "test-database"

    host: str
    port: int = 5432
    password: SecretStr
    options: SecretDict = Field(default_factory=lambda: SecretDict({}))


def _db_bytes(home: str) -> bytes:
    out = b""
    for name in ("fluvial.db", "fluvial.db-wal"):
        path = Path(home) / name
        if path.exists():
            out += path.read_bytes()
    return out


def test_secret_round_trip_is_encrypted_at_rest(fluvial_home: str) -> None:
    Secret(value=SECRET).save("db-password")
    loaded = Secret.load("db-password")
    assert loaded.get() == SECRET
    assert SECRET not in repr(loaded) and SECRET not in str(loaded)
    assert SECRET.encode() not in _db_bytes(fluvial_home)
    key = Path(fluvial_home) / "encryption.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() not in _db_bytes(fluvial_home)


def test_secret_may_hold_any_json_value() -> None:
    Secret(value={"user": "u", "token": SECRET}).save("creds")
    assert Secret.load("creds").get() == {"user": "u", "token": SECRET}
    assert Block.load("secret/creds").get()["token"] == SECRET


def test_the_key_can_come_from_the_environment(fluvial_home: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("FLUVIAL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    Secret(value=SECRET).save("env-key")
    assert not (Path(fluvial_home) / "encryption.key").exists()
    assert Secret.load("env-key").get() == SECRET


def test_a_wrong_or_missing_key_is_a_clear_error_never_garbage(
        fluvial_home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    Secret(value=SECRET).save("pw")
    monkeypatch.setenv("FLUVIAL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    with pytest.raises(EncryptionKeyError, match="secret/pw.*not the one it was saved with") as err:
        Secret.load("pw")
    assert SECRET not in str(err.value)
    monkeypatch.setenv("FLUVIAL_ENCRYPTION_KEY", "not-a-key")
    with pytest.raises(EncryptionKeyError, match="FLUVIAL_ENCRYPTION_KEY is not a valid"):
        Secret.load("pw")
    monkeypatch.delenv("FLUVIAL_ENCRYPTION_KEY")
    (Path(fluvial_home) / "encryption.key").unlink()
    with pytest.raises(EncryptionKeyError, match="no encryption key"):
        Secret.load("pw")


def test_value_blocks_and_user_blocks(fluvial_home: str) -> None:
    import datetime as dt

    JSON(value={"a": [1, 2]}).save("j")
    String(value="text").save("s")
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    DateTime(value=when).save("d")
    assert JSON.load("j").value == {"a": [1, 2]}
    assert Block.load("string/s").value == "text"
    assert DateTime.load("d").value == when

    Database(host="db.local", password=SECRET, options=SecretDict({"sslkey": SECRET})).save("main")
    db = Database.load("main")
    assert (db.host, db.port, db.password.get_secret_value()) == ("db.local", 5432, SECRET)
    assert db.options.get_secret_value() == {"sslkey": SECRET}
    assert SECRET.encode() not in _db_bytes(fluvial_home)


def test_save_refuses_an_existing_name_without_overwrite() -> None:
    String(value="one").save("name")
    with pytest.raises(ValueError, match="string/name already exists.*overwrite"):
        String(value="two").save("name")
    assert String.load("name").value == "one"
    String(value="two").save("name", overwrite=True)
    assert String.load("name").value == "two"


def test_names_missing_blocks_and_delete() -> None:
    with pytest.raises(ValueError, match="invalid block name"):
        String(value="x").save("Bad Name")
    with pytest.raises(BlockNotFoundError, match="no block string/nope"):
        String.load("nope")
    with pytest.raises(BlockNotFoundError, match="no block no-such-type/x"):
        Block.load("no-such-type/x")
    with pytest.raises(ValueError, match="slug/name"):
        Block.load("just-a-name")
    String(value="x").save("gone")
    assert String.delete("gone") is True
    assert String.delete("gone") is False


def test_a_stored_block_that_no_longer_validates_is_named_without_its_values() -> None:
    from fluvial.exceptions import BlockError
    from fluvial.store import catalog

    catalog.put_block("string", "broken", {"value": {"not": "a string"}}, overwrite=False)
    with pytest.raises(BlockError, match="string/broken.*value"):
        String.load("broken")
    assert String.load("broken", validate=False).value == {"not": "a string"}


def test_another_process_loads_a_registered_user_type_by_slug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "my_blocks.py"
    module.write_text(textwrap.dedent("""
        from typing import ClassVar
        from pydantic import Field, SecretStr
        from fluvial.blocks import Block

        class ApiCredentials(Block):
            _block_type_slug: ClassVar[str | None] = "api-credentials"
            url: str
            token: SecretStr
    """))
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        result = CliRunner().invoke(cli, ["block", "register", "-m", "my_blocks"])
        assert result.exit_code == 0, result.output
        assert "api-credentials" in result.output
        import my_blocks

        my_blocks.ApiCredentials(url="https://x", token=SECRET).save("prod")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_blocks", None)
    code = ("from fluvial.blocks import Block; b = Block.load('api-credentials/prod'); "
            "print(type(b).__name__, b.url, b.token.get_secret_value())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ApiCredentials", "https://x", SECRET]


def test_secrets_never_reach_cli_output_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    Database(host="h", password=SECRET, options=SecretDict({"k": SECRET})).save("main")
    Secret(value=SECRET).save("pw")
    runner = CliRunner()
    outputs = []
    for args in (["block", "ls"], ["block", "inspect", "secret/pw"],
                 ["block", "inspect", "test-database/main"],
                 ["block", "inspect", "test-database/main", "-o", "json"],
                 ["block", "ls", "-o", "json"], ["block", "type", "ls"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    shown = json.loads(outputs[3])["data"]
    assert shown["password"] == "********" and shown["options"] == "********"
    assert shown["host"] == "h"
    assert "********" in outputs[1]
    for text in [*outputs, caplog.text, repr(Database.load("main")), repr(Secret.load("pw"))]:
        assert SECRET not in text


def test_block_cli_errors_are_one_line() -> None:
    result = CliRunner().invoke(cli, ["block", "inspect", "secret/nope"])
    assert result.exit_code == 1 and "No block secret/nope" in result.output
    result = CliRunner().invoke(cli, ["block", "inspect", "no-slash"])
    assert result.exit_code == 2 and "SLUG/NAME" in result.output
    result = CliRunner().invoke(cli, ["block", "register", "-m", "no_such_module_xyz"])
    assert result.exit_code == 1 and "cannot import module 'no_such_module_xyz'" in result.output


def test_two_processes_saving_one_block_leave_one_whole_document() -> None:
    script = textwrap.dedent("""
        import sys
        from fluvial.blocks.system import Secret
        who = sys.argv[1]
        for _ in range(20):
            Secret(value=who * 50_000).save("race", overwrite=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, who]) for who in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert Secret.load("race").get() in ("a" * 50_000, "b" * 50_000)
