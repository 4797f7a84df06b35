"""Deployments in the record: stored once per (flow, name), parameters checked, runs created.

The CLI tests call the real ``fluvial`` command group in-process (click's runner)
against the test's store.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fluvial.cli import main
from fluvial.deployments import DeploymentNotFound, read_flow_run, run_deployment
from fluvial.deployments._entrypoint import code_version, load_flow
from fluvial.deployments._project import deploy_entrypoint
from fluvial.deployments._records import get_deployment, list_deployments
from fluvial.exceptions import EntrypointError, ParameterTypeError
from fluvial.flows import Flow


def test_a_redeploy_updates_the_same_deployment(backend, project: Path) -> None:
    first = deploy_entrypoint("flows.py:add", "nightly", source=project, parameters={"a": 1},
                              tags=["etl"])
    second = deploy_entrypoint("flows.py:add", "nightly", source=project, parameters={"a": 2},
                               version="v2")
    other = deploy_entrypoint("flows.py:add", "hourly", source=project, parameters={"a": 3})
    assert first.id == second.id != other.id
    stored = get_deployment("add/nightly")
    assert stored.parameters == {"a": 2} and stored.version == "v2" and stored.tags == []
    assert stored.entrypoint == "flows.py:add" and stored.source == str(project)
    assert [d.full_name for d in list_deployments()] == ["add/hourly", "add/nightly"]


def test_parameters_are_checked_against_the_flow(project: Path) -> None:
    with pytest.raises(ParameterTypeError, match=r"no parameter\(s\) \['c'\]"):
        deploy_entrypoint("flows.py:add", "x", source=project, parameters={"c": 1})
    with pytest.raises(ParameterTypeError, match="parameter 'a'"):
        deploy_entrypoint("flows.py:add", "x", source=project, parameters={"a": "many"})
    assert list_deployments() == []
    dep = deploy_entrypoint("flows.py:add", "x", source=project)
    schema = dep.parameter_schema
    assert schema["required"] == ["a"]
    assert schema["properties"]["a"]["type"] == "integer"
    assert schema["properties"]["b"]["default"] == 1


def test_a_run_gets_the_deployments_parameters_updated_by_its_own(backend, project) -> None:
    deploy_entrypoint("flows.py:add", "nightly", source=project, parameters={"a": 1},
                      tags=["etl"])
    before = time.time()
    run = run_deployment("add/nightly", parameters={"b": 5}, timeout=0, tags=["adhoc"])
    assert run.state_type == "SCHEDULED" and run.state_name == "Scheduled"
    assert run.parameters == {"a": 1, "b": 5}
    assert run.tags == ("adhoc", "etl")
    assert run.flow_name == "add"
    assert before <= run.scheduled_start_time <= time.time()
    assert read_flow_run(run.id) == run


def test_run_parameters_are_checked_before_a_run_exists(backend, project) -> None:
    deploy_entrypoint("flows.py:add", "nightly", source=project)
    with pytest.raises(ParameterTypeError, match=r"missing required parameter\(s\) \['a'\]"):
        run_deployment("add/nightly", timeout=0)
    with pytest.raises(ParameterTypeError, match=r"unknown parameter\(s\) \['zz'\]"):
        run_deployment("add/nightly", parameters={"a": 1, "zz": 2}, timeout=0)
    with pytest.raises(DeploymentNotFound, match="no deployment named 'add/weekly'"):
        run_deployment("add/weekly", parameters={"a": 1}, timeout=0)
    from fluvial.deployments._records import connection

    with connection() as conn:
        assert conn.execute("SELECT count(*) FROM flow_runs").fetchone() == (0,)


def test_an_idempotency_key_makes_one_run(backend, project) -> None:
    deploy_entrypoint("flows.py:add", "nightly", source=project, parameters={"a": 1})
    first = run_deployment("add/nightly", timeout=0, idempotency_key="order-17")
    again = run_deployment("add/nightly", parameters={"a": 9}, timeout=0,
                           idempotency_key="order-17")
    other = run_deployment("add/nightly", timeout=0, idempotency_key="order-18")
    assert again.id == first.id != other.id
    assert again.parameters == {"a": 1}


def test_entrypoint_errors_name_the_file_and_flow(project: Path) -> None:
    with pytest.raises(EntrypointError, match="no such file"):
        load_flow("missing.py:add", project)
    with pytest.raises(EntrypointError, match=r"has no flow named 'nope'.*'add'"):
        load_flow("flows.py:nope", project)
    with pytest.raises(EntrypointError, match="PATH.py:FLOW"):
        load_flow("flows.py", project)


def test_to_deployment_finds_the_flows_file(project: Path) -> None:
    flow = load_flow("flows.py:add", project)
    dep = flow.to_deployment("adhoc", parameters={"a": 4}, tags=["t"],
                             concurrency_limit=2, collision_strategy="cancel-new")
    assert dep.entrypoint == f"{project / 'flows.py'}:add"
    assert dep.concurrency_limit == 2 and dep.collision_strategy.value == "CANCEL_NEW"
    assert dep.id is None  # not stored until applied
    dep.apply()
    assert get_deployment("add/adhoc").concurrency_limit == 2
    with pytest.raises(ValueError, match="concurrency_limit must be an integer >= 1"):
        flow.to_deployment("bad", concurrency_limit=0)
    with pytest.raises(ValueError, match="collision_strategy must be ENQUEUE or CANCEL_NEW"):
        flow.to_deployment("bad", concurrency_limit=1, collision_strategy="drop")


def test_code_version_is_a_file_hash_or_the_git_commit(tmp_path: Path, project: Path) -> None:
    assert code_version("flows.py:add", project).startswith("sha256:")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "flows.py").write_text((project / "flows.py").read_text())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "flows.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "flows"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert code_version("flows.py:add", repo) == sha
    (repo / "flows.py").write_text((project / "flows.py").read_text() + "\n# edit\n")
    assert code_version("flows.py:add", repo) == sha + "+dirty"

    flow = Flow.from_source(f"file://{repo}", "flows.py:add")  # cloned with git
    assert flow.name == "add"
    dep = flow.to_deployment("from-git")
    assert dep.source == f"file://{repo}" and dep.entrypoint == "flows.py:add"
    local = Flow.from_source(repo, "flows.py:sleepy")
    assert local.to_deployment("local").source == str(repo)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_cli_deploy_ls_inspect_pause_resume_delete(backend, project) -> None:
    code, out = _cli("deploy", "flows.py:add", "--name", "nightly", "--param", "a=3",
                     "--tag", "etl", "--pool", "etl-pool", "--concurrency-limit", "1",
                     "--collision-strategy", "cancel-new", "--version", "1.2")
    assert code == 0, out
    assert "Deployed add/nightly" in out and "fluvial worker start --pool etl-pool" in out
    code, out = _cli("deployment", "ls", "-o", "json")
    assert code == 0, out
    [listed] = json.loads(out)
    assert listed["full_name"] == "add/nightly"
    assert listed["parameters"] == {"a": 3} and listed["tags"] == ["etl"]
    assert listed["work_pool"] == "etl-pool" and listed["concurrency_limit"] == 1
    assert listed["collision_strategy"] == "CANCEL_NEW" and listed["version"] == "1.2"

    code, out = _cli("deployment", "run", "add/nightly", "--param", "b=10", "--start-in", "10m")
    assert code == 0, out
    code, out = _cli("deployment", "inspect", "add/nightly", "-o", "json")
    assert code == 0, out
    inspected = json.loads(out)
    [run] = inspected["recent_runs"]
    assert run["parameters"] == {"a": 3, "b": 10} and run["state_type"] == "SCHEDULED"
    assert 590 < run["scheduled_start_time"] - time.time() <= 600

    code, out = _cli("deployment", "inspect", "add/nightly")
    assert code == 0 and "entrypoint  flows.py:add" in out and "ready" in out
    assert _cli("deployment", "pause", "add/nightly") == (0, "Paused add/nightly.\n")
    assert get_deployment("add/nightly").paused
    assert _cli("deployment", "resume", "add/nightly") == (0, "Resumed add/nightly.\n")
    assert not get_deployment("add/nightly").paused
    assert _cli("deployment", "delete", "add/nightly") == (0, "Deleted add/nightly.\n")
    assert read_flow_run(run["id"]).state_type == "CANCELLED"  # nobody would run it now
    code, out = _cli("deployment", "inspect", "add/nightly")
    assert code == 1 and "no deployment named 'add/nightly'" in out
    assert "Traceback" not in out


def test_cli_errors_are_one_line(project) -> None:
    code, out = _cli("deploy", "flows.py:add", "--name", "x", "--param", "c=1")
    assert code == 1 and "no parameter(s) ['c']" in out and "Traceback" not in out
    code, out = _cli("deploy", "flows.py:nope", "--name", "x")
    assert code == 1 and "has no flow named 'nope'" in out
    code, out = _cli("deploy", "flows.py:add")
    assert code == 2 and "--name" in out
    code, out = _cli("deployment", "run", "add/x", "--start-in", "soon")
    assert code == 2 and "duration" in out
    code, out = _cli("deployment", "run", "nope")
    assert code == 1 and "FLOW_NAME/DEPLOYMENT_NAME" in out


def test_fluvial_yaml_init_and_deploy_all(project: Path) -> None:
    code, out = _cli("init")
    assert code == 0 and (project / "fluvial.yaml").is_file()
    code, out = _cli("init")
    assert code == 1 and "exists already" in out
    (project / "fluvial.yaml").write_text(
        "name: demo\n"
        "deployments:\n"
        "  - name: nightly\n"
        "    entrypoint: flows.py:add\n"
        "    parameters: {a: 2}\n"
        "    tags: [etl]\n"
        "    work_pool: {name: batch}\n"
        "    concurrency_limit: {limit: 1, collision_strategy: CANCEL_NEW}\n"
        "  - name: nap\n"
        "    entrypoint: flows.py:sleepy\n"
    )
    code, out = _cli("deploy", "--all")
    assert code == 0, out
    assert "Deployed add/nightly" in out and "Deployed sleepy/nap" in out
    nightly = get_deployment("add/nightly")
    assert nightly.work_pool == "batch" and nightly.parameters == {"a": 2}
    assert nightly.concurrency_limit == 1 and nightly.collision_strategy.value == "CANCEL_NEW"
    assert nightly.source == str(project)
    (project / "fluvial.yaml").write_text(
        "deployments:\n  - name: x\n    entrypoint: flows.py:add\n    shedules: []\n")
    code, out = _cli("deploy", "--all")
    assert code == 1 and "unknown key(s) ['shedules']" in out


def test_runs_ls_and_inspect_take_o_json(project) -> None:
    from fluvial.deployments._records import connection
    from fluvial.store import get_recorder

    flow = load_flow("flows.py:add", project)
    assert flow(2, 3) == 10
    get_recorder().flush(timeout=30)
    code, out = _cli("runs", "ls", "-o", "json")
    assert code == 0, out
    [run] = json.loads(out)
    assert run["flow_name"] == "add" and run["state_type"] == "COMPLETED"
    assert isinstance(run["start_time"], float) and run["duration"] >= 0
    code, out = _cli("runs", "inspect", run["id"], "-o", "json")
    assert code == 0, out
    detail = json.loads(out)
    assert detail["id"] == run["id"]
    assert [s["type"] for s in detail["state_history"]] == ["RUNNING", "COMPLETED"]
    assert [t["name"][:6] for t in detail["task_runs"]] == ["double", "double"]
    with connection() as conn:
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone() == (2,)


def test_schedules_from_the_cli_and_python_keep_their_slugs(backend, project) -> None:
    from fluvial.deployments._records import list_schedules
    from fluvial.schedules import Cron, Interval

    code, out = _cli("deploy", "flows.py:add", "--name", "daily", "--param", "a=1",
                     "--cron", "0 8 * * *", "--timezone", "Europe/London")
    assert code == 0 and "with 1 schedule(s)" in out, out
    dep = get_deployment("add/daily")
    [cron] = list_schedules(str(dep.id))
    assert cron.schedule == Cron("0 8 * * *", timezone="Europe/London")
    assert cron.slug == Cron("0 8 * * *", timezone="Europe/London").derived_slug
    # a redeploy of the same schedule keeps the row and its next fire time
    from fluvial.deployments._records import connection

    with connection() as conn:
        conn.execute("UPDATE deployment_schedules SET next_fire_time = 123.0")
    assert _cli("deploy", "flows.py:add", "--name", "daily", "--param", "a=1",
                "--cron", "0 8 * * *", "--timezone", "Europe/London")[0] == 0
    [again] = list_schedules(str(dep.id))
    assert (again.id, again.next_fire_time) == (cron.id, 123.0)

    code, out = _cli("deployment", "schedule", "create", "add/daily", "--interval", "3600")
    assert code == 0, out
    code, out = _cli("deployment", "schedule", "ls", "add/daily", "-o", "json")
    listed = json.loads(out)
    assert sorted(s["schedule"]["kind"] for s in listed) == ["cron", "interval"]
    interval_slug = next(s["slug"] for s in listed if s["schedule"]["kind"] == "interval")
    assert interval_slug == Interval(3600).derived_slug
    code, out = _cli("deployment", "schedule", "pause", "add/daily", interval_slug[:12])
    assert code == 0 and f"Paused schedule {interval_slug}" in out
    assert [s.active for s in list_schedules(str(dep.id)) if s.slug == interval_slug] == [False]
    assert _cli("deployment", "schedule", "resume", "add/daily", interval_slug)[0] == 0
    assert _cli("deployment", "schedule", "delete", "add/daily", interval_slug)[0] == 0
    assert [s.slug for s in list_schedules(str(dep.id))] == [cron.slug]
    code, out = _cli("deployment", "schedule", "pause", "add/daily", "nope")
    assert code == 1 and "has no schedule 'nope'" in out
    code, out = _cli("deploy", "flows.py:add", "--name", "x", "--cron", "61 * * * *")
    assert code == 1 and "Traceback" not in out


def test_flow_deploy_and_fluvial_serve_arguments(project, capsys) -> None:
    flow = load_flow("flows.py:add", project)
    dep_id = flow.deploy("pooled", work_pool_name="batch", parameters={"a": 1}, interval=60,
                         print_next_steps=False)
    dep = get_deployment("add/pooled")
    assert dep.id == dep_id and dep.work_pool == "batch" and len(dep.schedules) == 1
    with pytest.raises(ValueError, match="only one of cron=, interval="):
        flow.to_deployment("x", cron="* * * * *", interval=60)
    import fluvial

    with pytest.raises(ValueError, match="at least one deployment"):
        fluvial.serve()
    with pytest.raises(TypeError, match="to_deployment"):
        fluvial.serve("add/pooled")


def test_run_deployment_inside_a_flow_inherits_tags_and_parent(backend, project) -> None:
    from fluvial import flow, tags, task

    deploy_entrypoint("flows.py:add", "child", source=project, parameters={"a": 1})

    @task
    def trigger() -> str:
        return str(run_deployment("add/child", timeout=0).id)

    @flow
    def parent() -> tuple[str, str]:
        with tags("nightly"):
            direct = str(run_deployment("add/child", timeout=0).id)
            from_task = trigger()
        return direct, from_task

    direct, from_task = parent()
    assert read_flow_run(direct).tags == ("nightly",)
    from fluvial.deployments._records import connection

    with connection() as conn:
        parent_task = conn.execute("SELECT parent_task_run_id FROM flow_runs WHERE id = ?",
                                   (from_task,)).fetchone()[0]
        alone = conn.execute("SELECT parent_task_run_id FROM flow_runs WHERE id = ?",
                             (direct,)).fetchone()[0]
    assert parent_task is not None and alone is None
    outside = run_deployment("add/child", timeout=0, as_subflow=False)
    assert outside.tags == ()
