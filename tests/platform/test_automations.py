"""Automations: triggers on the event log fire their actions exactly once, per event or window."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from click.testing import CliRunner
from platform_helpers import env_for_children, wait_until

from fluvial.automations import (
    Automation,
    CallWebhook,
    ChangeFlowRunState,
    CompoundTrigger,
    DeploymentEventTrigger,
    EventTrigger,
    RunDeployment,
    SequenceTrigger,
    list_automations,
)
from fluvial.cli import main as cli
from fluvial.deployments._entrypoint import load_flow
from fluvial.evaluator import Evaluator
from fluvial.events import emit_event
from fluvial.store import get_recorder
from fluvial.store.connection import open_database


def _flush() -> None:
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()


def _query(sql: str, *args: object) -> list[tuple]:
    conn = open_database()
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def _runs_of(deployment: str) -> list[tuple]:
    return _query("SELECT fr.id, fr.parameters, fr.state_type, fr.idempotency_key FROM flow_runs fr "
                  "JOIN deployments d ON d.id = fr.deployment_id "
                  "WHERE d.flow_name || '/' || d.name = ? ORDER BY fr.created", deployment)


def _deploy_add(project: Path, name: str = "b", **options: object) -> str:
    flow = load_flow("flows.py:add", project)
    return flow.to_deployment(name, **options).apply()


def _emit(name: str, resource_id: str, **kwargs: object) -> None:
    emit_event(name, {"fluvial.resource.id": resource_id}, **kwargs)  # type: ignore[arg-type]
    _flush()


def test_flow_a_completing_runs_deployment_b_with_a_parameter_from_its_event(
        backend: str, project: Path) -> None:
    from fluvial import flow

    _deploy_add(project)
    Automation(
        name="b-after-a",
        trigger=EventTrigger(expect={"prefect.flow-run.Completed"},
                             match_related={"prefect.resource.id": "prefect.flow.upstream"}),
        actions=[RunDeployment(deployment_id="add/b", parameters={
            "a": "{{ event.payload.validated_state.type | length }}",
            "b": "{{ event.resource.name | length }}"})],
    ).create()

    @flow(flow_run_name="abc")
    def upstream() -> int:
        return 1

    @flow
    def unrelated() -> int:
        return 2

    evaluator = Evaluator()
    evaluator.run_once()  # the cursor starts here: what happened before is not evaluated
    unrelated()
    upstream()
    _flush()
    assert evaluator.run_once() == 1
    [(run_id, parameters, state, key)] = _runs_of("add/b")
    assert json.loads(parameters) == {"a": "9", "b": "3"} or json.loads(parameters)["a"] in (9, "9")
    assert state == "SCHEDULED" and key.startswith("automation:")
    assert evaluator.run_once() == 0  # nothing fires twice
    assert len(_runs_of("add/b")) == 1
    [(status, error)] = _query("SELECT status, error FROM automation_firings")
    assert (status, error) == ("done", None)


def test_reactive_threshold_within_a_window_and_for_each_buckets(backend: str) -> None:
    Automation(
        name="three-errors",
        trigger=EventTrigger(expect={"app.error"}, for_each={"fluvial.resource.id"},
                             threshold=3, within=60),
        actions=[ChangeFlowRunState(state="FAILED")],
    ).create()
    evaluator = Evaluator()
    evaluator.run_once()
    for resource in ("svc.a", "svc.b", "svc.a", "svc.b", "svc.a"):
        _emit("app.error", resource)
    evaluator.decide(open_database())
    firings = _query("SELECT key FROM automation_firings")
    assert len(firings) == 1 and '"svc.a"' in firings[0][0]


def test_proactive_trigger_fires_once_per_window_without_the_event(backend: str) -> None:
    Automation(
        name="heartbeat-missing",
        trigger=EventTrigger(posture="Proactive", expect={"heartbeat"},
                             match={"fluvial.resource.id": "worker.x"}, within=30),
        actions=[ChangeFlowRunState(state="FAILED")],
    ).create()
    base = time.time()
    now = [base]
    evaluator = Evaluator(clock=lambda: now[0])
    evaluator.decide(open_database())
    _emit("heartbeat", "worker.x")
    [(received,)] = _query("SELECT received FROM events")

    def firings_at(t: float) -> int:
        now[0] = t
        conn = open_database()
        try:
            evaluator.decide(conn)
        finally:
            conn.close()
        return len(_query("SELECT key FROM automation_firings"))

    assert firings_at(received + 29) == 0          # the heartbeat keeps the window open
    _emit("heartbeat", "worker.y")                  # another resource does not count
    assert firings_at(received + 31) == 1          # no heartbeat from worker.x for 30 s
    assert firings_at(received + 45) == 1          # once per window
    assert firings_at(received + 61) == 2          # the next window passed too
    _emit("heartbeat", "worker.x")
    [(last,)] = _query("SELECT MAX(received) FROM events WHERE resource_id = 'worker.x'")
    assert firings_at(last + 20) == 2              # a heartbeat arrived: a new window starts
    assert firings_at(last + 31) == 3


def test_compound_and_sequence_triggers(backend: str) -> None:
    Automation(name="both", trigger=CompoundTrigger(
        require="all", within=60, triggers=[EventTrigger(expect={"extract.done"}),
                                            EventTrigger(expect={"load.done"})]),
        actions=[ChangeFlowRunState(state="FAILED")]).create()
    Automation(name="in-order", trigger=SequenceTrigger(
        within=60, triggers=[EventTrigger(expect={"step.one"}), EventTrigger(expect={"step.two"})]),
        actions=[ChangeFlowRunState(state="FAILED")]).create()
    evaluator = Evaluator()
    evaluator.run_once()
    for name in ("load.done", "step.two", "step.one", "extract.done", "step.two"):
        _emit(name, "r")
    evaluator.decide(open_database())
    by_name = {a.id: a.name for a in list_automations()}
    fired = sorted(by_name[a] for (a,) in _query("SELECT automation_id FROM automation_firings"))
    assert fired == ["both", "in-order"]


def test_webhook_action_posts_the_rendered_payload(backend: str) -> None:
    from fluvial.blocks.webhook import Webhook

    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        Webhook(url=f"http://127.0.0.1:{server.server_port}/hook").save("ops")
        Automation(name="notify", trigger=EventTrigger(expect={"deploy.*"}),
                   actions=[CallWebhook(block_document_id="webhook/ops",
                                        payload="{{ event.event }} of {{ event.payload.app }}")]
                   ).create()
        evaluator = Evaluator()
        evaluator.run_once()
        _emit("deploy.finished", "app.shop", payload={"app": "shop"})
        assert evaluator.run_once() == 1
        assert received == [b"deploy.finished of shop"]
    finally:
        server.shutdown()


EVALUATOR = textwrap.dedent("""
    import sys, time
    from fluvial.evaluator import Evaluator
    evaluator = Evaluator(batch_size=int(sys.argv[1]))
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline:
        evaluator.run_once()
        time.sleep(0.01)
""")


def _burst(project: Path, n: int) -> None:
    _deploy_add(project)
    Automation(name="per-order", trigger=EventTrigger(expect={"order.placed"}),
               actions=[RunDeployment(deployment_id="add/b",
                                      parameters={"a": "{{ event.payload.n }}"})]).create()
    Evaluator().run_once()  # cursor: from here
    for i in range(n):
        emit_event("order.placed", {"fluvial.resource.id": f"order.{i}"}, payload={"n": i})
    _flush()


def _check_exactly_once(n: int) -> None:
    runs = _runs_of("add/b")
    assert len(runs) == n, f"{len(runs)} runs for {n} events"
    assert sorted(int(json.loads(p)["a"]) for _, p, _, _ in runs) == list(range(n))
    assert len(_query("SELECT key FROM automation_firings")) == n
    assert _query("SELECT status, COUNT(*) FROM automation_firings GROUP BY status") == [("done", n)]


def test_two_evaluators_at_once_fire_each_action_exactly_once(backend: str, project: Path) -> None:
    n = 120
    _burst(project, n)
    procs = [subprocess.Popen([sys.executable, "-c", EVALUATOR, "7", "20"], env=env_for_children())
             for _ in range(2)]
    try:
        wait_until(lambda: _query("SELECT COUNT(*) FROM automation_firings WHERE status = 'done'"
                                  )[0][0] == n, timeout=60, what="every firing done")
    finally:
        for p in procs:
            p.kill()
            p.wait()
    _check_exactly_once(n)
    claimers = {c for (c,) in _query("SELECT DISTINCT claimed_by FROM automation_firings")}
    assert len(claimers) >= 1


def test_an_evaluator_killed_mid_batch_resumes_and_fires_nothing_twice(
        backend: str, project: Path) -> None:
    n = 150
    _burst(project, n)
    first = subprocess.Popen([sys.executable, "-c", EVALUATOR, "5", "60"], env=env_for_children())
    try:
        wait_until(lambda: _query("SELECT COUNT(*) FROM automation_firings "
                                  "WHERE status = 'done'")[0][0] >= 20,
                   timeout=60, what="some firings done")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    decided = _query("SELECT COUNT(*) FROM automation_firings")[0][0]
    done_before = _query("SELECT COUNT(*) FROM automation_firings WHERE status = 'done'")[0][0]
    assert 0 < done_before < n and decided < n, \
        f"the evaluator was not killed mid-way ({decided} decided, {done_before} done)"
    evaluator = Evaluator(lease_seconds=0.0)  # the dead evaluator's claims lapse at once
    wait_until(lambda: evaluator.run_once() == 0 and _query(
        "SELECT COUNT(*) FROM automation_firings WHERE status = 'done'")[0][0] == n,
        timeout=60, what="the rest fired")
    _check_exactly_once(n)


def test_deployment_triggers_from_to_deployment_and_the_cli(backend: str, project: Path) -> None:
    _deploy_add(project, "on-event", triggers=[DeploymentEventTrigger(
        expect={"file.arrived"}, parameters={"a": "{{ event.payload.size }}"})])
    [automation] = list_automations()
    assert automation.deployment_id is not None and automation.actions[0].type == "run-deployment"
    Evaluator().run_once()
    _emit("file.arrived", "bucket/x.csv", payload={"size": 5})
    Evaluator().run_once()
    [(_, parameters, _, _)] = _runs_of("add/on-event")
    assert int(json.loads(parameters)["a"]) == 5
    # redeploying replaces the deployment's triggers
    _deploy_add(project, "on-event", triggers=[])
    assert list_automations() == []
    result = CliRunner().invoke(cli, ["deploy", "flows.py:add", "--name", "cli", "--trigger",
                                      '{"expect": ["x.y"], "parameters": {"a": 1}}'])
    assert result.exit_code == 0, result.output
    assert [a.name for a in list_automations()] == ["add/cli__trigger_0"]
    bad = CliRunner().invoke(cli, ["deploy", "flows.py:add", "--name", "cli", "--trigger",
                                   '{"posture": "Sometimes"}'])
    assert bad.exit_code == 1 and "trigger 0: posture" in bad.output


def test_automation_cli_and_malformed_files_name_the_field(tmp_path: Path) -> None:
    good = tmp_path / "automation.yaml"
    good.write_text(textwrap.dedent("""
        name: cancel-slow
        trigger:
          type: event
          expect: ["prefect.flow-run.Running"]
          posture: Reactive
        actions:
          - type: cancel-flow-run
    """))
    runner = CliRunner()
    result = runner.invoke(cli, ["automation", "create", "-f", str(good)])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(cli, ["automation", "ls", "-o", "json"]).output)
    assert listed[0]["name"] == "cancel-slow"
    assert listed[0]["trigger"]["expect"] == ["fluvial.flow-run.Running"]
    paused = runner.invoke(cli, ["automation", "pause", "cancel-slow"])
    assert (paused.exit_code, paused.output) == (0, "Paused automation 'cancel-slow'.\n")
    assert list_automations()[0].enabled is False
    resumed = runner.invoke(cli, ["automation", "resume", listed[0]["id"]])
    assert (resumed.exit_code, resumed.output) == (0, "Resumed automation 'cancel-slow'.\n")
    assert list_automations()[0].enabled is True
    assert runner.invoke(cli, ["automation", "inspect", "cancel-slow"]).exit_code == 0
    missing = runner.invoke(cli, ["automation", "pause", "no-such"])
    assert missing.exit_code == 1 and "looked for 'no-such' as an id and as a name" in missing.output
    deleted = runner.invoke(cli, ["automation", "delete", "cancel-slow"])
    assert (deleted.exit_code, deleted.output) == (0, "Deleted automation 'cancel-slow'.\n")
    assert list_automations() == []

    cases = {
        "posture: Sometimes": "trigger.posture",
        "threshold: 0": "trigger.threshold",
        "within: -5": "within must not be negative",
    }
    for line, field in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"name: x\ntrigger:\n  type: event\n  {line}\nactions:\n"
                       "  - type: cancel-flow-run\n")
        result = runner.invoke(cli, ["automation", "create", "-f", str(bad)])
        assert result.exit_code == 1 and str(bad) in result.output and field in result.output, \
            result.output
    missing = tmp_path / "missing.yaml"
    missing.write_text("name: x\ntrigger: {type: event}\nactions:\n  - type: run-deployment\n")
    result = runner.invoke(cli, ["automation", "create", "-f", str(missing)])
    assert "actions.0.deployment_id: Field required" in result.output
    result = runner.invoke(cli, ["automation", "create", "-f", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0 and "nope.yaml" in result.output
