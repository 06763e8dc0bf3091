"""The OpenAPI document is one a client generator can use: short stable operation ids,
a schema per target type, typed answers, public routes marked public, no nullable
optional bodies; a client generated from it by openapi-python-client works; the docs
pages load everything from tickwork itself."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import TenantKey

P = "/api/v1/tenants/{tenant}/projects/{project}"
T = P + "/agents/{agent}/scheduled-triggers/{trigger_id}"
INV = T + "/invocations/{invocation_id}"

# Every operation and its id. Generated clients name their methods after these: a
# change here is a breaking change for them, so it is made deliberately.
OPERATION_IDS = {
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/metrics"): "get_metrics",
    ("post", "/api/deploy/restart-scheduler"): "restart_scheduler",
    ("get", "/api/v1/system/scheduler"): "get_scheduler",
    ("post", "/api/v1/admin/tenants"): "create_tenant",
    ("post", "/api/v1/admin/tenants/{tenant}/api-keys"): "admin_create_key",
    ("get", "/api/v1/tenants/{tenant}/api-keys"): "list_keys",
    ("post", "/api/v1/tenants/{tenant}/api-keys"): "create_key",
    ("delete", "/api/v1/tenants/{tenant}/api-keys/{key_id}"): "revoke_key",
    ("get", "/api/v1/tenants/{tenant}/quotas"): "get_quotas",
    ("get", "/api/v1/admin/tenants/{tenant}/quotas"): "admin_get_quotas",
    ("get", "/api/v1/tenants/{tenant}/audit"): "list_tenant_audit",
    ("get", "/api/v1/tenants/{tenant}/projects/{project}/audit"): "list_project_audit",
    ("get", "/api/v1/tenants/{tenant}/projects/{project}/retention"): "get_retention",
    ("put", "/api/v1/tenants/{tenant}/projects/{project}/retention"): "put_retention",
    ("put", "/api/v1/admin/tenants/{tenant}/quotas"): "admin_put_quotas",
    ("get", "/api/v1/tenants/{tenant}/projects"): "list_projects",
    ("put", P): "put_project",
    ("get", P): "get_project",
    ("delete", P): "delete_project",
    ("get", P + "/refs"): "list_refs",
    ("delete", P + "/refs/{ref}"): "delete_ref",
    ("get", P + "/agents"): "list_agents",
    ("put", P + "/agents/{agent}"): "put_agent",
    ("get", P + "/agents/{agent}"): "get_agent",
    ("delete", P + "/agents/{agent}"): "delete_agent",
    ("put", P + "/definition"): "put_definition",
    ("get", P + "/definition"): "get_definition",
    ("get", P + "/notifications"): "get_notifications",
    ("put", P + "/notifications"): "put_notifications",
    ("post", P + "/notifications/test"): "test_notifications",
    ("get", P + "/notifications/deliveries"): "list_deliveries",
    ("get", P + "/triggers"): "list_project_triggers",
    ("get", P + "/invocations/{invocation_id}"): "get_project_invocation",
    ("get", P + "/agents/{agent}/scheduled-triggers"): "list_triggers",
    ("post", P + "/agents/{agent}/scheduled-triggers"): "create_trigger",
    ("get", T): "get_trigger",
    ("patch", T): "update_trigger",
    ("delete", T): "delete_trigger",
    ("get", T + "/preview"): "preview_trigger",
    ("get", T + "/usage"): "get_trigger_usage",
    ("post", T + "/run"): "run_now",
    ("get", T + "/invocations"): "list_trigger_invocations",
    ("get", INV): "get_invocation",
    ("post", INV + "/cancel"): "cancel_invocation",
    ("post", INV + "/rerun"): "rerun_invocation",
    ("get", P + "/invocations"): "list_invocations",
    ("get", P + "/upcoming-runs"): "list_upcoming_runs",
    ("post", T + "/pause"): "pause_trigger",
    ("post", T + "/resume"): "resume_trigger",
    ("post", T + "/skip"): "skip_slots",
    ("post", T + "/backfill"): "create_backfill",
    ("get", T + "/backfills"): "list_backfills",
    ("get", T + "/backfills/{backfill_id}"): "get_backfill",
    ("post", T + "/backfills/{backfill_id}/cancel"): "cancel_backfill",
    ("post", P + "/pause"): "pause_project",
    ("post", P + "/resume"): "resume_project",
    ("post", P + "/invocations/cancel"): "bulk_cancel_invocations",
    ("post", P + "/invocations/rerun"): "bulk_rerun_invocations",
}
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec["components"]["schemas"][name]
    return found


def ok_schema(operation: dict[str, Any]) -> dict[str, Any]:
    ok = operation["responses"].get("200") or operation["responses"]["201"]
    found: dict[str, Any] = ok["content"]["application/json"]["schema"]
    return found


def test_every_operation_has_its_short_stable_id(spec: dict[str, Any]) -> None:
    ids = {key: op["operationId"] for key, op in operations(spec).items()}
    assert ids == OPERATION_IDS
    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z][a-z_]{2,30}", op_id) for op_id in ids.values())


def test_public_routes_declare_no_security_and_the_others_do(spec: dict[str, Any]) -> None:
    for key, operation in operations(spec).items():
        if key in PUBLIC:
            assert operation["security"] == [], key
        else:
            assert operation.get("security"), key


def test_the_document_names_its_license_and_servers(spec: dict[str, Any]) -> None:
    assert spec["info"]["license"] == {"name": "Apache-2.0", "identifier": "Apache-2.0"}
    assert spec["servers"] == [{"url": "/", "description": "the server that serves this document"}]


def test_no_request_body_is_nullable(spec: dict[str, Any]) -> None:
    bodies = {
        key: operation["requestBody"]
        for key, operation in operations(spec).items()
        if "requestBody" in operation
    }
    for key, body in bodies.items():
        body_schema = body["content"]["application/json"]["schema"]
        assert "$ref" in body_schema, (key, body_schema)  # a model, never anyOf [model, null]
    # Bodies that may be left out are optional, not nullable.
    for key in [("put", P), ("post", "/api/v1/tenants/{tenant}/api-keys")]:
        assert not bodies[key].get("required", False), key


@pytest.mark.parametrize(
    ("model", "side"),
    [
        ("AgentIn", "In"),
        ("DefinitionAgentIn", "In"),
        ("AgentOut", "Out"),
        ("DefinitionAgentOut", "Out"),
    ],
)
def test_each_target_type_has_a_schema_chosen_by_type(
    spec: dict[str, Any], model: str, side: str
) -> None:
    target = schema(spec, model)["properties"]["target"]
    assert target["discriminator"]["propertyName"] == "type"
    assert target["discriminator"]["mapping"] == {
        "webhook": f"#/components/schemas/WebhookTarget{side}",
        "python": f"#/components/schemas/PythonTarget{side}",
        "a2a": f"#/components/schemas/A2ATarget{side}",
        "openai": f"#/components/schemas/OpenAITarget{side}",
    }
    assert {option["$ref"] for option in target["oneOf"]} == set(
        target["discriminator"]["mapping"].values()
    )


def test_shown_targets_never_have_a_secret_string(spec: dict[str, Any]) -> None:
    webhook = schema(spec, "WebhookTargetOut")["properties"]
    assert webhook["has_secret"]["type"] == "boolean"
    assert {o.get("$ref") for o in webhook["secret"]["anyOf"]} == {
        "#/components/schemas/SecretEnvRef",
        None,
    }
    assert set(schema(spec, "PythonTargetOut")["properties"]) == {"type", "handler"}
    for name in ("A2ATargetOut", "OpenAITargetOut"):
        shown = schema(spec, name)["properties"]
        assert shown["has_secret"]["type"] == "boolean"
        assert {o.get("$ref") for o in shown["secret"]["anyOf"]} == {
            "#/components/schemas/SecretEnvRef",
            None,
        }


def test_the_agent_targets_schemas_name_their_fields(spec: dict[str, Any]) -> None:
    a2a = schema(spec, "A2ATargetIn")
    assert set(a2a["properties"]) == {"type", "url", "secret", "protocol_version"}
    assert a2a["required"] == ["type", "url"]
    versions = a2a["properties"]["protocol_version"]["anyOf"][0]
    assert versions["enum"] == ["1.0", "0.3"]
    model = schema(spec, "OpenAITargetIn")
    assert set(model["properties"]) == {
        "type",
        "base_url",
        "model",
        "api",
        "instructions",
        "secret",
    }
    assert model["required"] == ["type", "base_url", "model"]
    assert model["properties"]["api"]["anyOf"][0]["enum"] == ["responses", "chat"]
    assert set(schema(spec, "A2ATargetOut")["properties"]) == {
        "type",
        "url",
        "protocol_version",
        "has_secret",
        "secret",
    }
    assert set(schema(spec, "OpenAITargetOut")["properties"]) == {
        "type",
        "base_url",
        "model",
        "api",
        "instructions",
        "has_secret",
        "secret",
    }


def test_the_run_context_fields_are_declared(spec: dict[str, Any]) -> None:
    for name in ("TriggerCreate", "TriggerPatch"):
        fields = schema(spec, name)["properties"]
        assert fields["conversation"]["anyOf"][0]["enum"] == ["new", "continue"]
        budget = fields["daily_token_budget"]["anyOf"][0]
        assert (budget["type"], budget["minimum"]) == ("integer", 1)
        run_as = fields["run_as"]["anyOf"][0]
        assert (run_as["maxLength"], run_as["pattern"]) == (256, "^[!-~](?:[ -~]{0,254}[!-~])?$")
    shown = schema(spec, "TriggerOut")["properties"]
    assert {"conversation", "daily_token_budget", "run_as"} <= set(shown)
    usage = schema(spec, "InvocationOut")["properties"]["usage"]
    assert {o.get("$ref") for o in usage["anyOf"]} == {"#/components/schemas/Usage", None}
    assert set(schema(spec, "Usage")["properties"]) == {
        "input_tokens",
        "output_tokens",
        "total_tokens",
    }


def test_results_and_views_are_typed(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    assert ok_schema(ops[("get", "/healthz")]) == {"$ref": "#/components/schemas/HealthOut"}
    assert ok_schema(ops[("get", "/readyz")]) == {"$ref": "#/components/schemas/ReadyOut"}
    assert ok_schema(ops[("get", "/api/v1/system/scheduler")]) == {
        "$ref": "#/components/schemas/SchedulerOut"
    }
    result = schema(spec, "InvocationOut")["properties"]["result"]
    assert {o.get("$ref") for o in result["anyOf"]} == {
        "#/components/schemas/InvocationResult",
        None,
    }
    assert set(schema(spec, "InvocationResult")["properties"]) == {
        "status_code",
        "conversation_id",
        "response",
        # a2a targets
        "task_id",
        "state",
        "text",
        "artifacts",
        # openai targets
        "response_id",
        "model",
        "output_text",
        "usage",
    }
    deployment = schema(spec, "DeploymentOut")["properties"]["state"]
    assert deployment["enum"] == ["active", "draining", "gone"]
    metrics = ops[("get", "/metrics")]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


# The conventions of SPEC §10: which operations take which header, and answer which.
IDEMPOTENT = {
    ("post", P + "/agents/{agent}/scheduled-triggers"),
    ("post", T + "/run"),
    ("post", INV + "/rerun"),
    ("post", T + "/backfill"),
    ("post", P + "/invocations/rerun"),
    ("post", "/api/v1/tenants/{tenant}/api-keys"),
    ("post", "/api/v1/admin/tenants/{tenant}/api-keys"),
    ("post", P + "/notifications/test"),
}
IF_MATCH = {
    ("patch", T),
    ("delete", T),
    ("put", P + "/agents/{agent}"),
    ("delete", P + "/agents/{agent}"),
    ("put", P + "/definition"),
    ("put", P + "/retention"),
    ("put", P + "/notifications"),
}
ETAG = {
    ("get", T): "200",
    ("patch", T): "200",
    ("post", P + "/agents/{agent}/scheduled-triggers"): "201",
    ("get", P + "/agents/{agent}"): "200",
    ("put", P + "/agents/{agent}"): "200",
    ("get", P + "/definition"): "200",
    ("put", P + "/definition"): "200",
    ("get", P + "/retention"): "200",
    ("put", P + "/retention"): "200",
    ("get", P + "/notifications"): "200",
    ("put", P + "/notifications"): "200",
}


def _headers(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}


def test_creating_posts_take_an_idempotency_key_and_changes_take_if_match(
    spec: dict[str, Any],
) -> None:
    for key, operation in operations(spec).items():
        headers = _headers(operation)
        assert ("Idempotency-Key" in headers) == (key in IDEMPOTENT), key
        assert ("If-Match" in headers) == (key in IF_MATCH), key
        if key in IDEMPOTENT:
            idempotency = headers["Idempotency-Key"]
            assert idempotency["required"] is False
            schema = idempotency["schema"]["anyOf"][0]
            assert schema["maxLength"] == 255
            assert schema["pattern"] == "^[\\x21-\\x7e]{1,255}$"
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            assert "Idempotent-Replayed" in operation["responses"][ok]["headers"], key
            assert "409" in operation["responses"], key
        if key in IF_MATCH:
            assert "412" in operation["responses"], key
            assert operation["responses"]["412"]["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }


def test_reads_and_writes_of_triggers_agents_and_definitions_answer_an_etag(
    spec: dict[str, Any],
) -> None:
    ops = operations(spec)
    for key, status in ETAG.items():
        assert "ETag" in ops[key]["responses"][status]["headers"], key


def test_the_new_fields_and_parameters_are_published(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    trigger = schema(spec, "TriggerOut")["properties"]
    assert {o.get("$ref") for o in trigger["last_run"]["anyOf"]} == {
        "#/components/schemas/LastRun",
        None,
    }
    assert set(schema(spec, "LastRun")["properties"]) == {
        "invocation_id",
        "scheduled_for",
        "status",
        "completed_at",
        "conversation_id",
    }
    definition = schema(spec, "DefinitionOut")["properties"]
    assert definition["dry_run"]["type"] == "boolean"
    assert definition["changes"]["items"] == {"$ref": "#/components/schemas/DefinitionChange"}
    assert schema(spec, "DefinitionChange")["properties"]["action"]["enum"] == [
        "create",
        "update",
        "delete",
        "unchanged",
    ]
    assert ok_schema(ops[("get", P + "/definition")]) == {
        "$ref": "#/components/schemas/DefinitionIn"
    }
    secret = schema(spec, "WebhookTargetIn")["properties"]["secret"]
    assert {"$ref": "#/components/schemas/SecretKeep"} in secret["anyOf"]
    assert schema(spec, "SecretKeep")["properties"]["keep"] == {
        "type": "boolean",
        "const": True,
        "title": "Keep",
    }

    def query(key: tuple[str, str]) -> set[str]:
        return {p["name"] for p in ops[key].get("parameters", []) if p["in"] == "query"}

    assert query(("put", P + "/definition")) == {"ref", "dry_run", "allow_empty"}
    assert query(("get", P + "/definition")) == {"ref"}
    assert query(("get", P + "/triggers")) == {
        "agent",
        "ref",
        "enabled",
        "paused",
        "health",
        "q",
        "limit",
        "cursor",
    }
    assert query(("get", P + "/invocations")) == {
        "status",
        "origin",
        "agent",
        "ref",
        "trigger_id",
        "from",
        "to",
        "limit",
        "cursor",
    }
    assert query(("get", T + "/invocations")) == {
        "status",
        "origin",
        "from",
        "to",
        "limit",
        "cursor",
    }
    assert ok_schema(ops[("get", P + "/triggers")]) == {
        "$ref": "#/components/schemas/Page_TriggerOut_"
    }
    assert ok_schema(ops[("get", P + "/invocations/{invocation_id}")]) == {
        "$ref": "#/components/schemas/InvocationOut"
    }


def test_the_answers_match_their_types(
    client: TestClient, api: TestClient, acme: TenantKey
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    url = f"/api/v1/tenants/{acme.tenant}/projects/p"
    assert api.put(url).status_code == 201  # no body: an optional body left out
    webhook = {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "s"}
    shown = api.put(url + "/agents/w", json={"target": webhook}).json()["target"]
    assert shown == {"type": "webhook", "url": "https://hooks.example.com/a", "has_secret": True}
    python = {"type": "python", "handler": "agents.run"}
    assert api.put(url + "/agents/py", json={"target": python}).json()["target"] == python
    assert api.post(f"/api/v1/tenants/{acme.tenant}/api-keys").status_code == 201


# --- the docs pages -------------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_the_docs_pages_load_only_same_origin_assets(
    client: TestClient, page: str, assets: set[str]
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    parser = _Assets()
    parser.feed(html)
    assert parser.urls, html
    for url in parser.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    assert {url.rsplit("/", 1)[1] for url in parser.urls} == assets
    # Nothing else reaches out either: no URL with a scheme in the page at all.
    assert not re.search(r"https?://", html), html
    assert "/openapi.json" in html
    for url in parser.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    if page == "/docs":
        assert '"validatorUrl": null' in html


def test_the_assets_have_their_content_types(client: TestClient) -> None:
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"]
    css = client.get("/docs/assets/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    assert client.get("/docs/assets/no-such-file.js").status_code == 404


# --- a generated client -----------------------------------------------------------------------


def test_a_client_generated_by_openapi_python_client_makes_a_round_trip(
    spec: dict[str, Any], api: TestClient, acme: TenantKey, tmp_path: Path
) -> None:
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    (tmp_path / "config.yaml").write_text(
        "project_name_override: tickwork-client\n"
        "package_name_override: tickwork_client\n"
        "post_hooks: []\n"
    )
    generator = Path(sys.executable).with_name("openapi-python-client")
    generated = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yaml",
            "--meta",
            "none",
            "--output-path",
            "tickwork_client",
            "--fail-on-warning",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        _round_trip(api, acme)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "tickwork_client"]:
            del sys.modules[name]


def _round_trip(api: TestClient, acme: TenantKey) -> None:
    client_module = importlib.import_module("tickwork_client")
    models = importlib.import_module("tickwork_client.models")
    put_project = importlib.import_module("tickwork_client.api.projects.put_project")
    put_agent = importlib.import_module("tickwork_client.api.projects.put_agent")
    create_trigger = importlib.import_module(
        "tickwork_client.api.scheduled_triggers.create_trigger"
    )
    get_trigger = importlib.import_module("tickwork_client.api.scheduled_triggers.get_trigger")

    client = client_module.AuthenticatedClient(base_url="http://testserver", token=acme.key)
    client.set_httpx_client(api)  # the app in-process, with the tenant's key
    scope = {"tenant": acme.tenant, "project": "demo"}

    project = put_project.sync(**scope, client=client, body=models.ProjectIn(name="Demo"))
    assert isinstance(project, models.ProjectOut)
    assert project.name == "Demo"

    target = models.WebhookTargetIn(
        type_="webhook", url="https://hooks.example.com/run", secret="s3cret"
    )
    agent = put_agent.sync(
        **scope, agent="writer", client=client, body=models.AgentIn(target=target)
    )
    assert isinstance(agent, models.AgentOut)
    assert isinstance(agent.target, models.WebhookTargetOut)
    assert agent.target.has_secret is True

    body = models.TriggerCreate(
        name="morning-report", cron_expression="30 8 * * MON-FRI", timezone="Europe/Berlin"
    )
    created = create_trigger.sync(**scope, agent="writer", client=client, body=body)
    assert isinstance(created, models.TriggerOut)
    fetched = get_trigger.sync(**scope, agent="writer", trigger_id=created.id, client=client)
    assert isinstance(fetched, models.TriggerOut)
    assert (fetched.id, fetched.name, fetched.timezone) == (
        created.id,
        "morning-report",
        "Europe/Berlin",
    )
    assert fetched.next_run_at == created.next_run_at
    missing = get_trigger.sync_detailed(
        **scope, agent="writer", trigger_id="trg_" + "0" * 26, client=client
    )
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)


def test_the_lifecycle_fields_and_bodies_are_in_the_document(spec: dict[str, Any]) -> None:
    trigger = set(schema(spec, "TriggerOut")["properties"])
    assert {
        "starts_at",
        "ends_at",
        "max_runs",
        "remaining_runs",
        "paused",
        "paused_reason",
        "paused_by",
        "paused_at",
        "paused_until",
        "skip_remaining",
        "health",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "pause_after_failures",
    } <= trigger
    health = schema(spec, "TriggerOut")["properties"]["health"]
    assert health["enum"] == ["ok", "failing", "late", "paused", "disabled"]
    assert "pause_after_failures" in schema(spec, "TriggerCreate")["properties"]
    assert "pause_after_failures" in schema(spec, "TriggerPatch")["properties"]
    assert {"starts_at", "ends_at", "max_runs"} <= set(schema(spec, "TriggerCreate")["properties"])
    assert {"starts_at", "ends_at", "max_runs"} <= set(schema(spec, "TriggerPatch")["properties"])
    assert {"paused", "paused_reason", "paused_by", "paused_at", "paused_until"} <= set(
        schema(spec, "ProjectOut")["properties"]
    )
    assert {"rerun_of", "backfill_id"} <= set(schema(spec, "InvocationOut")["properties"])
    assert set(schema(spec, "PreviewOut")["properties"]) == {
        "description",
        "timezone",
        "next_runs",
        "skipped_runs",
        "calendar_slots",
    }
    assert set(schema(spec, "PauseIn")["properties"]) == {"reason", "until", "cancel_pending"}
    assert set(schema(spec, "SkipIn")["properties"]) == {"count"}
    assert set(schema(spec, "BackfillIn")["properties"]) == {
        "from",
        "to",
        "mode",
        "max_concurrency",
        "dry_run",
    }
    assert set(schema(spec, "BackfillOut")["properties"]) == {
        "id",
        "trigger_id",
        "agent",
        "ref",
        "from",
        "to",
        "mode",
        "max_concurrency",
        "status",
        "slots",
        "created",
        "skipped",
        "dispatched",
        "created_by",
        "created_at",
        "updated_at",
        "completed_at",
    }
    assert set(schema(spec, "BulkIn")["properties"]) == {
        "status",
        "agent",
        "trigger_id",
        "origin",
        "from",
        "to",
        "limit",
        "dry_run",
    }
    assert set(schema(spec, "BulkOut")["properties"]) == {"matched", "changed", "dry_run"}
    ops = operations(spec)
    backfill = ops[("post", T + "/backfill")]["responses"]
    assert backfill["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BackfillOut"
    }
    assert backfill["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BackfillDryRunOut"
    }
