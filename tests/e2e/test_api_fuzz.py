"""Schema-driven fuzzing of the JSON API against a real server: for any request the
OpenAPI schema allows, the API never answers 5xx.

Authenticated operations run with a real bearer token, so they reach the services
instead of stopping at 401. Rate limits answer 429 along the way; that is a valid answer.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.slow

# Signing out or deleting the fuzzing account would turn everything after into 401s.
SKIP = re.compile(r"^(POST /api/v1/auth/logout|DELETE /api/v1/me.*)$")


@pytest.fixture(scope="module")
def token(server: Any) -> str:
    password = os.environ.get("MESTERI_DEMO_PASSWORD", "demo-Mesteri-2026")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post(
            "/api/v1/auth/login", json={"login": "client@demo.mesteri.ro", "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["tokens"]["access_token"])


def test_no_server_errors(server: Any, token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/v1/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if SKIP.match(label):
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: Any) -> None:
            response = case.call(
                base_url=server.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
            )
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
        checked.append(label)
    assert "POST /api/v1/auth/register" in checked
    assert len(checked) >= 20
