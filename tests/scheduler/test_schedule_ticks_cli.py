"""``fluvial deployment schedule ticks FLOW/NAME``: the scheduler's decisions, and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner
from scheduler_helpers import AddDeployment

from fluvial.cli import main
from fluvial.scheduler import run_scheduler_once
from fluvial.schedules import Cron

T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC).timestamp()


def test_ticks_show_created_and_skipped_with_reasons(conn: Any,
                                                     add_deployment: AddDeployment) -> None:
    dep = add_deployment([Cron("* * * * *", slug="every-minute")], name="nightly",
                         next_fire_time=T)
    run_scheduler_once(conn, T + 1)
    run_scheduler_once(conn, T + 10 * 60 + 1)  # an outage: catch-up skips nine
    result = CliRunner().invoke(main, ["deployment", "schedule", "ticks", "etl/nightly"])
    assert result.exit_code == 0, result.output
    assert "every-minute" in result.output and "created" in result.output
    assert "skipped" in result.output and "catchup=latest" in result.output
    assert "Schedule every-minute: next fire time" in result.output
    out = CliRunner().invoke(main, ["deployment", "schedule", "ticks", dep, "-o", "json"])
    data = json.loads(out.output)
    assert data["deployment"] == "etl/nightly" and data["paused"] is False
    assert [t["outcome"] for t in data["ticks"]] == ["created", "skipped", "created"]
    assert data["ticks"][1]["reason"].startswith("catchup=latest")
    assert data["schedules"] == [{"slug": "every-minute", "active": True,
                                  "next_fire_time": T + 11 * 60}]
    only = CliRunner().invoke(main, ["deployment", "schedule", "ticks", "etl/nightly",
                                     "--outcome", "skipped", "-o", "json"])
    assert [t["outcome"] for t in json.loads(only.output)["ticks"]] == ["skipped"]


def test_ticks_of_a_paused_deployment_say_so(conn: Any, add_deployment: AddDeployment) -> None:
    add_deployment([Cron("* * * * *")], name="idle", paused=True)
    result = CliRunner().invoke(main, ["deployment", "schedule", "ticks", "etl/idle"])
    assert result.exit_code == 0, result.output
    assert "is paused" in result.output and "No ticks recorded yet." in result.output


def test_ticks_of_an_unknown_deployment_is_a_clear_error(conn: Any) -> None:
    result = CliRunner().invoke(main, ["deployment", "schedule", "ticks", "etl/nope"])
    assert result.exit_code == 1
    assert "no deployment 'etl/nope'" in result.output
    assert "Traceback" not in result.output
