"""Property-based fuzzing of the OpenAPI schema: no input may produce a 5xx.

Schemathesis builds Hypothesis strategies from the live `/openapi.json` of the service running in
its own process; its pytest plugin is not used, so the test runs under the repository's pytest.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(espeak_process: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{espeak_process}/openapi.json")
    assert isinstance(schema, OpenApiSchema)

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=schema.as_strategy(mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=espeak_process, timeout=60)
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    check()
