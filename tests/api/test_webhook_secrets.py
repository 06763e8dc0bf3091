"""Webhook secrets in the Standard Webhooks form (``whsec_<base64>``) are checked where
they enter: one that cannot sign is refused with 422 naming ``target.secret``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, field_error

URL = "https://hooks.example.com/run"


def test_a_whsec_secret_is_accepted_and_never_shown(api: TestClient, scope: Scope) -> None:
    target = {"type": "webhook", "url": URL, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    response = api.put(scope.agent_url, json={"target": target})
    assert response.status_code == 200, response.text
    assert response.json()["target"] == {"type": "webhook", "url": URL, "has_secret": True}


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "whsec_A", "whsec_é"])
def test_a_whsec_secret_that_is_not_base64_is_refused(
    api: TestClient, scope: Scope, secret: str
) -> None:
    target = {"type": "webhook", "url": URL, "secret": secret}
    error = field_error(api.put(scope.agent_url, json={"target": target}))
    assert error["field"] == "target.secret"
    assert "whsec_" in error["message"]


def test_a_pushed_whsec_secret_that_is_not_base64_is_refused_at_its_element(
    api: TestClient, scope: Scope
) -> None:
    agents = [{"id": "w", "target": {"type": "webhook", "url": URL, "secret": "whsec_%%"}}]
    error = field_error(api.put(scope.project_url + "/definition", json={"agents": agents}))
    assert error["field"] == "agents[0].target.secret"
