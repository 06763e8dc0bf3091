"""Agent secrets at rest (SPEC §9): encrypted with TICKWORK_SECRET_KEY, or referenced
from the workers' environment; never returned; rotated by ``tickwork secrets rotate``.

Written through the API as a tenant would, then read back from the raw database row as
someone holding a copy of the database file would."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.helpers import Scope
from tickwork.cli.main import app as cli
from tickwork.errors import PermanentError
from tickwork.runtime.workers import Targets
from tickwork.services import secrets
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import tables
from tickwork.targets.base import TargetCall
from tickwork.targets.webhook import verify_signature
from tickwork.testing import FakeClock

KEY_1 = Fernet.generate_key().decode()
KEY_2 = Fernet.generate_key().decode()
SECRET = "whsec-plaintext-4f1c9a"
ENV_NAME = "TICKWORK_TARGET_SECRET_BRIEFER"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The test settings with a secret key (and loopback webhooks allowed)."""
    return Settings(
        database_url=database_url,
        deployment_id="dep_test",
        version="test",
        secret_keys=(KEY_1,),
        allow_private_targets=True,
    )


def webhook(secret: Any = SECRET, url: str = "https://hooks.example.com/run") -> dict[str, Any]:
    return {"type": "webhook", "url": url, "secret": secret}


def put_agent(api: TestClient, scope: Scope, target: dict[str, Any]) -> Any:
    return api.put(scope.agent_url, json={"target": target})


def push(api: TestClient, scope: Scope, target: dict[str, Any]) -> dict[str, Any]:
    response = api.put(
        scope.project_url + "/definition",
        json={"agents": [{"id": scope.agent, "target": target, "triggers": []}]},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def raw_target(ctx: Context, scope: Scope) -> str:
    """The agent's target as the database stores it, as text."""
    agents = tables.agents
    with ctx.db.engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.cast(agents.c.target, sa.Text)).where(
                agents.c.tenant_id == scope.tenant,
                agents.c.project_id == scope.project,
                agents.c.id == scope.agent,
            )
        ).scalar_one()
    return str(value)


def stored_secret(ctx: Context, scope: Scope) -> Any:
    return json.loads(raw_target(ctx, scope))["secret"]


def with_keys(ctx: Context, *keys: str) -> Context:
    return Context(db=ctx.db, clock=ctx.clock, settings=ctx.settings.with_(secret_keys=keys))


# --- encrypted at rest -----------------------------------------------------------------


def test_the_database_row_holds_no_plaintext_secret_when_a_key_is_set(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    response = put_agent(api, scope, webhook())
    assert response.status_code == 200, response.text

    row = raw_target(ctx, scope)
    assert SECRET not in row
    token = stored_secret(ctx, scope)["fernet"]
    assert Fernet(KEY_1).decrypt(token.encode()).decode() == SECRET
    assert response.json()["target"] == {
        "type": "webhook",
        "url": "https://hooks.example.com/run",
        "has_secret": True,
    }
    assert SECRET not in api.get(scope.agent_url).text


def test_a_push_encrypts_and_an_unchanged_push_stays_unchanged(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    first = push(api, scope, webhook())
    stored = stored_secret(ctx, scope)
    assert SECRET not in raw_target(ctx, scope)

    again = push(api, scope, webhook())
    assert again["changed"] is False
    assert again["summary"]["agents"]["unchanged"] == 1
    assert again["revision"] == first["revision"]
    assert stored_secret(ctx, scope) == stored  # compared decrypted; ciphertext kept

    changed = push(api, scope, webhook("another-secret"))
    assert changed["summary"]["agents"]["updated"] == 1
    assert changed["revision"] == first["revision"] + 1


def test_an_unchanged_put_of_the_same_secret_keeps_the_revision(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    put_agent(api, scope, webhook())
    refs = api.get(scope.project_url + "/refs").json()
    stored = stored_secret(ctx, scope)

    put_agent(api, scope, webhook())

    assert api.get(scope.project_url + "/refs").json() == refs
    assert stored_secret(ctx, scope) == stored


def test_without_a_key_secrets_are_stored_as_before(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    ctx.settings = ctx.settings.with_(secret_keys=())

    put_agent(api, scope, webhook())

    assert stored_secret(ctx, scope) == SECRET


# --- the worker signs with the decrypted secret ----------------------------------------


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.requests: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def call_through_worker(ctx: Context, target: dict[str, Any]) -> None:
    """What a worker does for one attempt: build the target from the stored agent, call."""
    call = TargetCall(
        invocation_id="inv_01",
        idempotency_key="k",
        trigger_id="trg_01",
        trigger_name="t",
        tenant="acme",
        project="p",
        agent="a",
        ref_name="main",
        ref_revision=1,
        scheduled_for=ctx.clock.now(),
        attempt=1,
        origin="schedule",
        message="hello",
        payload={},
        timezone="UTC",
    )

    async def run() -> None:
        targets = Targets(ctx)
        try:
            job: Any = SimpleNamespace(agent=SimpleNamespace(target=target))
            await targets.for_job(job).call(call)
        finally:
            await targets.close()

    asyncio.run(run())


def stored_agent_target(ctx: Context, scope: Scope) -> dict[str, Any]:
    target: dict[str, Any] = json.loads(raw_target(ctx, scope))
    return target


def test_the_receiver_verifies_the_signature_made_with_the_decrypted_secret(
    api: TestClient, scope: Scope, ctx: Context, receiver: _Receiver, clock: FakeClock
) -> None:
    put_agent(api, scope, webhook(url=receiver.url))

    call_through_worker(ctx, stored_agent_target(ctx, scope))

    [(headers, body)] = receiver.requests
    stamp, signature = headers["x-tickwork-timestamp"], headers["x-tickwork-signature"]
    assert verify_signature(SECRET, stamp, body, signature, now=clock.now())


def test_an_encrypted_secret_without_its_key_fails_the_attempt_permanently(
    api: TestClient, scope: Scope, ctx: Context, receiver: _Receiver
) -> None:
    put_agent(api, scope, webhook(url=receiver.url))
    target = stored_agent_target(ctx, scope)

    with pytest.raises(PermanentError, match="TICKWORK_SECRET_KEY is not set"):
        call_through_worker(with_keys(ctx), target)
    with pytest.raises(PermanentError, match="a key that is not in TICKWORK_SECRET_KEY"):
        call_through_worker(with_keys(ctx, KEY_2), target)
    assert receiver.requests == []


# --- environment references ------------------------------------------------------------


def test_an_env_reference_is_stored_shown_and_resolved_at_call_time(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    receiver: _Receiver,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    response = put_agent(api, scope, webhook({"env": ENV_NAME}, url=receiver.url))
    assert response.status_code == 200, response.text
    assert response.json()["target"]["secret"] == {"env": ENV_NAME}  # a name, not a secret
    assert response.json()["target"]["has_secret"] is True
    assert stored_secret(ctx, scope) == {"env": ENV_NAME}

    monkeypatch.setenv(ENV_NAME, "from-the-environment")
    call_through_worker(ctx, stored_agent_target(ctx, scope))

    [(headers, body)] = receiver.requests
    assert verify_signature(
        "from-the-environment",
        headers["x-tickwork-timestamp"],
        body,
        headers["x-tickwork-signature"],
        now=clock.now(),
    )


def test_a_missing_env_variable_fails_the_attempt_permanently(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    receiver: _Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_agent(api, scope, webhook({"env": ENV_NAME}, url=receiver.url))
    monkeypatch.delenv(ENV_NAME, raising=False)

    with pytest.raises(PermanentError, match=f"environment variable {ENV_NAME}, which is not set"):
        call_through_worker(ctx, stored_agent_target(ctx, scope))
    assert receiver.requests == []


@pytest.mark.parametrize(
    "secret",
    [
        {"env": "TICKWORK_SECRET_KEY"},
        {"env": "TICKWORK_DATABASE_URL"},
        {"env": "AWS_SECRET_ACCESS_KEY"},
        {"env": "TICKWORK_TARGET_SECRET_"},
        {"env": "TICKWORK_TARGET_SECRET_lower"},
        {"env": "TICKWORK_TARGET_SECRET_X; rm -rf /"},
        {"env": ENV_NAME, "default": "x"},
        {"fernet": "gAAAAA-forged"},
        {"env": 7},
        "",
        7,
    ],
)
def test_a_secret_that_is_no_string_nor_a_target_env_reference_is_refused(
    api: TestClient, scope: Scope, secret: Any
) -> None:
    for response in (
        put_agent(api, scope, webhook(secret)),
        api.put(
            scope.project_url + "/definition",
            json={"agents": [{"id": scope.agent, "target": webhook(secret), "triggers": []}]},
        ),
    ):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        fields = [error["field"] for error in response.json()["errors"]]
        assert any("secret" in field for field in fields), fields


# --- rotation --------------------------------------------------------------------------


def test_rotation_re_encrypts_every_secret_with_the_first_key(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    put_agent(api, scope, webhook())
    refs = api.get(scope.project_url + "/refs").json()
    agent = api.get(scope.agent_url).json()

    # Step 1: the new key first, the old one still listed. Step 2: rotate.
    report = secrets.rotate(with_keys(ctx, KEY_2, KEY_1))

    assert (report.re_encrypted, report.encrypted, report.undecryptable) == (1, 0, [])
    token = stored_secret(ctx, scope)["fernet"]
    # Step 3: the old key can go.
    assert secrets.reveal({"fernet": token}, (KEY_2,)) == SECRET
    assert SECRET not in raw_target(ctx, scope)
    assert api.get(scope.project_url + "/refs").json() == refs  # no revision bump
    assert api.get(scope.agent_url).json() == agent  # updated_at kept


def test_rotation_encrypts_secrets_stored_before_the_key_was_set(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    ctx.settings = ctx.settings.with_(secret_keys=())
    put_agent(api, scope, webhook())
    assert stored_secret(ctx, scope) == SECRET

    report = secrets.rotate(with_keys(ctx, KEY_1))

    assert (report.re_encrypted, report.encrypted) == (0, 1)
    assert SECRET not in raw_target(ctx, scope)
    assert secrets.reveal(stored_secret(ctx, scope), (KEY_1,)) == SECRET


def test_the_rotate_command_reports_secrets_no_key_decrypts(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_agent(api, scope, webhook())
    stored = stored_secret(ctx, scope)
    runner = CliRunner()

    monkeypatch.setenv("TICKWORK_SECRET_KEY", KEY_2)  # the old key dropped too early
    refused = runner.invoke(cli, ["secrets", "rotate", "--database-url", database_url])
    assert refused.exit_code == 1
    assert f"{scope.tenant}/{scope.project}/main/{scope.agent}" in refused.output
    assert stored_secret(ctx, scope) == stored  # left as it was

    monkeypatch.setenv("TICKWORK_SECRET_KEY", f"{KEY_2},{KEY_1}")
    rotated = runner.invoke(cli, ["secrets", "rotate", "--database-url", database_url])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1" in rotated.output
    assert secrets.reveal(stored_secret(ctx, scope), (KEY_2,)) == SECRET

    monkeypatch.setenv("TICKWORK_SECRET_KEY", "not-a-key")
    invalid = runner.invoke(cli, ["secrets", "rotate", "--database-url", database_url])
    assert invalid.exit_code == 2
    assert "TICKWORK_SECRET_KEY: entry 1 is not a Fernet key" in invalid.output
    assert "not-a-key" not in invalid.output


def test_generate_key_prints_a_key_the_setting_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["secrets", "generate-key"])
    assert result.exit_code == 0
    monkeypatch.setenv("TICKWORK_SECRET_KEY", result.output.strip())
    assert Settings.from_env().secret_keys == (result.output.strip(),)
