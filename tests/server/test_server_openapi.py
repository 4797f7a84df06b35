"""Property-based tests of the API against its own OpenAPI document: no input gives a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from fluvial.server.app import create_app
from fluvial.server.security import Guard

# the ASGI client schemathesis uses sends "Host: testserver"
app = create_app(Guard.for_bind("127.0.0.1", 4200, None, insecure=False, extra_hosts=("testserver",)))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.fixture(autouse=True)
def _a_run_and_a_deployment(recorded: dict[str, str]) -> None:
    """Some rows to find, so generated ids sometimes hit and the reads do real work."""


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_input_makes_the_server_fail(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
