"""No password of a database URL reaches a message (issue 16, item 9).

Every form a password can take in ``FLUVIAL_DATABASE_URL`` — userinfo, with a raw
``/``, ``@``, ``?`` or ``#``, percent-encoded, ``?password=`` in any case,
``sslpassword`` — is redacted by a parser, in ``StoreError`` text, the store's logged
warnings and the CLI's errors; real ``fluvial`` processes pointed at a PostgreSQL URL
that cannot connect are checked end to end.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluvial._redact import redact_text, redact_url
from fluvial.exceptions import StoreError

SECRET = "Zq9-s3cr3t"

FORMS = {
    "userinfo": f"postgresql://alice:{SECRET}@db.example:5432/runs",
    "slash": f"postgresql://alice:{SECRET}/x@db.example/runs",
    "at-question-hash": f"postgresql://alice:{SECRET}@x?y#z@db.example/runs?sslmode=require",
    "percent-encoded": f"postgresql://alice:{quote(SECRET + '@/?', safe='')}@db.example/runs",
    "query": f"postgresql://alice@db.example/runs?sslmode=require&password={SECRET}",
    "query-upper": f"postgres://alice@db.example/runs?PASSWORD={SECRET}",
    "sslpassword": f"postgresql://alice@db.example/runs?sslpassword={SECRET}&sslmode=verify-full",
    "driver-scheme": f"postgresql+psycopg://alice:{SECRET}@db.example/runs",
    "empty-user": f"postgresql://:{SECRET}@db.example/runs",
}


@pytest.mark.parametrize("url", FORMS.values(), ids=FORMS.keys())
def test_every_password_form_is_redacted(url: str) -> None:
    redacted = redact_url(url)
    assert SECRET not in redacted and quote(SECRET, safe="") not in redacted
    assert "***" in redacted
    assert "db.example" in redacted and "alice" in redacted or url.startswith("postgresql://:")
    assert SECRET not in redact_text(f"cannot open the fluvial store at {url!r}: refused")
    assert SECRET not in str(StoreError(f"store at {url}: refused"))


def test_urls_without_a_password_are_unchanged() -> None:
    for url in ("postgresql://alice@db.example/runs?sslmode=require", "sqlite:////tmp/x.db",
                "postgresql://db.example/runs?options=-csearch_path%3Dteam"):
        assert redact_url(url) == url
    assert redact_text("host=h password=secret dbname=x") == "host=h password=*** dbname=x"


_password = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1,
                    max_size=30).map(lambda tail: "Zq9" + tail)


@given(password=_password, user=st.sampled_from(["", "alice", "u.ser-1"]),
       query=st.sampled_from(["", "?sslmode=require", "?application_name=fluvial&x=1"]))
def test_a_raw_password_of_any_characters_never_survives(password: str, user: str,
                                                         query: str) -> None:
    url = f"postgresql://{user}:{password}@db.example:5432/runs{query}"
    assert password not in redact_url(url)
    assert password not in redact_text(f"error at {url}: boom")


@given(password=_password)
def test_a_query_password_never_survives(password: str) -> None:
    encoded = quote(password, safe="")
    url = f"postgresql://alice@db.example/runs?sslmode=require&password={encoded}"
    assert encoded not in redact_url(url) and encoded not in redact_text(f"at {url} failed")


def test_the_store_logger_redacts(caplog: pytest.LogCaptureFixture) -> None:
    import fluvial.store  # noqa: F401 - installs the store logger's filter

    with caplog.at_level(logging.WARNING, logger="fluvial.store"):
        logging.getLogger("fluvial.store").warning("fluvial store: %s", FORMS["slash"])
    assert SECRET not in caplog.text and "***" in caplog.text


def _fluvial(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLUVIAL_HOME": str(tmp_path / "home"), "FLUVIAL_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "fluvial.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("form", ["slash", "query", "at-question-hash", "sslpassword"])
def test_cli_and_warnings_of_real_processes_show_no_password(tmp_path: Path, form: str) -> None:
    pytest.importorskip("psycopg")
    url = FORMS[form].replace("db.example", "127.0.0.1:1").replace("127.0.0.1:1:5432",
                                                                    "127.0.0.1:1")
    (tmp_path / "f.py").write_text(
        "from fluvial import flow, task\n@task\ndef one(): return 1\n@flow\ndef f(): return one()\n")
    ran = _fluvial(tmp_path, url, "run", "f.py:f")  # the record is off, with a warning
    assert ran.returncode == 0, ran.stderr
    assert "fluvial.store" in ran.stderr and "127.0.0.1" in ran.stderr
    for args in (["runs", "ls"], ["concurrency-limit", "ls"], ["runs", "inspect", "latest"]):
        out = _fluvial(tmp_path, url, *args)
        assert out.returncode == 1
        assert "Error: cannot open the fluvial store at postgres" in out.stderr
        assert SECRET not in out.stdout + out.stderr
    assert SECRET not in ran.stdout + ran.stderr
    bad_scheme = _fluvial(tmp_path, url.replace("postgresql", "postgresq", 1), "runs", "ls")
    assert bad_scheme.returncode == 1 and "unsupported" in bad_scheme.stderr
    assert SECRET not in bad_scheme.stderr


def test_settings_repr_shows_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from fluvial import settings

    monkeypatch.setenv("FLUVIAL_DATABASE_URL", FORMS["slash"])
    assert SECRET not in repr(settings.get()) and SECRET not in str(settings.get())
