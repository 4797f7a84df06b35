"""fluvial.settings: one reading of every FLUVIAL_* variable, at call time."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluvial import flow, settings, task
from fluvial.blocks._keys import key_file
from fluvial.concurrency._host import HostSlotManager
from fluvial.exceptions import FluvialError, SettingsError
from fluvial.orchestration.resume import _runs_dir
from fluvial.serialization.storage import default_storage_dir
from fluvial.store import get_recorder, store_path


def test_a_home_with_a_tilde_is_one_home_for_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLUVIAL_HOME", "~/x")
    home = tmp_path / "user" / "x"
    assert settings.home() == home
    assert store_path() == home / "fluvial.db"
    assert default_storage_dir() == home / "storage"
    assert _runs_dir() == home / "runs"
    assert HostSlotManager().root == home / "slots"
    assert key_file() == home / "encryption.key"

    @task(persist_result=True)
    def double(x: int) -> int:
        return 2 * x

    @flow
    def f() -> int:
        return double(21)

    assert f() == 42
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush(timeout=30)
    assert (home / "fluvial.db").exists()
    assert any((home / "storage").iterdir())
    assert any((home / "runs").iterdir())
    assert not (tmp_path / "~").exists()  # no literal "~" directory beside the real home


def test_settings_follow_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUVIAL_STORE", "off")
    assert settings.get().store_enabled is False
    assert get_recorder() is None
    monkeypatch.setenv("FLUVIAL_STORE", "on")
    assert settings.get().store_enabled is True
    monkeypatch.setenv("FLUVIAL_PROGRESS", "on")
    assert settings.get().progress is True
    monkeypatch.setenv("FLUVIAL_PROGRESS", "auto")
    assert settings.get().progress is None


def test_the_snapshot_is_reused_until_a_variable_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    first = settings.get()
    assert settings.get() is first
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", "sqlite:////tmp/elsewhere.db")
    second = settings.get()
    assert second is not first
    assert second.database_url == "sqlite:////tmp/elsewhere.db"


@pytest.mark.parametrize(
    ("name", "value"), [("FLUVIAL_STORE_WRITER", "pigeon"), ("FLUVIAL_PROGRESS", "sometimes")]
)
def test_an_invalid_value_is_an_error_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name) as info:
        settings.get()
    assert value in str(info.value)
    assert isinstance(info.value, FluvialError)


def test_the_encryption_key_is_not_in_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUVIAL_ENCRYPTION_KEY", "  sekrit-key  ")
    current = settings.get()
    assert current.encryption_key == "sekrit-key"
    assert "sekrit" not in repr(current)


def test_the_readme_documents_every_variable() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    for name in settings.VARIABLES:
        assert f"| `{name}` |" in table
