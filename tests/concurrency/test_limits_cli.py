"""`fluvial concurrency-limit ...` round trip through click's CliRunner."""

from __future__ import annotations

from click.testing import CliRunner

from fluvial import concurrency as conc
from fluvial.cli.concurrency import concurrency_limit


def run(*args: str):
    return CliRunner().invoke(concurrency_limit, list(args))


def test_round_trip():
    r = run("create", "db", "3")
    assert r.exit_code == 0, r.output
    assert conc.get_limit("db").limit == 3
    assert run("create", "api", "5", "--slot-decay-per-second", "2").exit_code == 0

    lease = conc.get_slot_manager().acquire("db")
    r = run("ls")
    assert r.exit_code == 0 and "db" in r.output and "api" in r.output and "2/s" in r.output
    r = run("inspect", "db")
    assert r.exit_code == 0
    assert "limit" in r.output and "active slots" in r.output
    assert conc.get_slot_manager().statistics("db").active == 1

    assert run("reset", "db").exit_code == 0
    assert conc.get_slot_manager().statistics("db").active == 0
    lease.release()

    assert run("delete", "db").exit_code == 0
    assert conc.get_limit("db") is None
    r = run("inspect", "db")
    assert r.exit_code != 0 and "No concurrency limit" in r.output


def test_bad_input_is_a_clear_error():
    r = run("create", "db", "--", "-1")
    assert r.exit_code != 0 and "0 or more" in r.output
    r = run("create", "db", "x")
    assert r.exit_code != 0
    assert run("delete", "nope").exit_code != 0
    r = run("create", "blocked", "0")
    assert r.exit_code == 0 and "blocked" in r.output
