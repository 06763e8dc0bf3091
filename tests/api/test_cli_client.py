"""The commands over the HTTP API (projects, agents, triggers, invocations, definition
push) against the app in-process: tables for people, JSON for scripts, one error line
and an exit code for every failure."""

from __future__ import annotations

import json
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from tests.api.helpers import TenantKey, dispatch_at, work_one
from tickwork.cli import remote
from tickwork.cli.main import app as cli
from tickwork.client._sync import client as sync_module
from tickwork.services.context import Context
from tickwork.testing import FakeClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def tw(app: FastAPI, acme: TenantKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """``tickwork ...`` in-process, sending to the app, as tenant acme in project demo."""
    http = TestClient(app)
    monkeypatch.setattr(remote, "http_client_factory", lambda: http)
    env = {
        "TICKWORK_URL": "http://testserver",
        "TICKWORK_API_KEY": acme.key,
        "TICKWORK_TENANT": "acme",
        "TICKWORK_PROJECT": "demo",
        "COLUMNS": "200",
    }

    def run(*args: str, **overrides: str) -> Result:
        result = CliRunner().invoke(cli, list(args), env={**env, **overrides}, prog_name="tickwork")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    yield run
    http.close()


@pytest.fixture
def demo(tw: Run) -> Run:
    """Project demo with a python agent ``writer``."""
    assert tw("projects", "put", "demo", "--name", "Demo").code == 0
    assert tw("agents", "put", "writer", "--handler", "agents.run").code == 0
    return tw


def created_trigger(tw: Run, *args: str) -> dict[str, Any]:
    result = tw("triggers", "create", "--agent", "writer", "--json", *args)
    assert result.code == 0, result.err
    found: dict[str, Any] = result.json()
    return found


def test_projects_are_put_listed_shown_and_deleted(tw: Run) -> None:
    put = tw("projects", "put", "demo", "--name", "Demo", "--description", "reports")
    assert put.code == 0, put.err
    assert "Demo" in put.out
    assert tw("projects", "put", "other").code == 0
    listed = tw("projects", "list")
    assert listed.code == 0
    assert "demo" in listed.out
    assert "reports" in listed.out
    assert [p["id"] for p in tw("projects", "list", "--json").json()] == ["demo", "other"]
    assert tw("projects", "get", "demo", "--json").json()["description"] == "reports"
    refused = tw("projects", "delete", "other")
    assert refused.code == 2
    assert "pass --yes" in refused.err
    deleted = tw("projects", "delete", "other", "--yes")
    assert (deleted.code, deleted.out) == (0, "")
    assert "deleted project 'other'" in deleted.err
    gone = tw("projects", "get", "other")
    assert gone.code == 1
    assert gone.err == "error: 404 Not found: project 'other' not found\n"


def test_agents_are_put_with_either_target(demo: Run) -> None:
    hook = demo(
        "agents", "put", "hook", "--webhook", "https://hooks.example.com/a",
        "--secret-env", "TICKWORK_TARGET_SECRET_HOOK", "--json",
    )  # fmt: skip
    assert hook.code == 0, hook.err
    assert hook.json()["target"]["secret"] == {"env": "TICKWORK_TARGET_SECRET_HOOK"}
    signed = demo("agents", "put", "signed", "--webhook", "https://h.example.com", "--secret", "x")
    assert signed.code == 0
    assert "x" not in signed.out.split()
    listed = demo("agents", "list")
    assert "webhook https://hooks.example.com/a (signed)" in listed.out
    assert "python agents.run" in listed.out
    assert demo("agents", "get", "writer", "--json").json()["target"]["handler"] == "agents.run"
    for args, says in [
        ((), "exactly one target"),
        (("--webhook", "https://a.example", "--handler", "h"), "exactly one target"),
        (("--handler", "h", "--secret", "s"), "not for python targets"),
        (("--webhook", "https://a.example", "--secret", "s", "--secret-env", "X"), "not both"),
    ]:
        bad = demo("agents", "put", "x", *args)
        assert bad.code == 2, args
        assert says in bad.err
    assert demo("agents", "delete", "hook").code == 0
    assert [a["id"] for a in demo("agents", "list", "--json").json()] == ["signed", "writer"]


def test_triggers_are_created_listed_changed_previewed_run_and_deleted(demo: Run) -> None:
    trigger = created_trigger(
        demo, "--name", "morning", "--cron", "30 8 * * 1-5", "--tz", "Europe/Berlin",
        "--payload", '{"team": "core"}', "--template", "Report for {{ team }}",
        "--max-retries", "3",
    )  # fmt: skip
    assert (trigger["timezone"], trigger["payload"], trigger["max_retries"]) == (
        "Europe/Berlin",
        {"team": "core"},
        3,
    )
    listed = demo("triggers", "list", "--agent", "writer")
    assert listed.code == 0
    assert trigger["id"] in listed.out
    assert "30 8 * * 1-5" in listed.out
    shown = demo("triggers", "get", trigger["id"], "--agent", "writer")
    assert "Europe/Berlin" in shown.out
    updated = demo("triggers", "update", trigger["id"], "--agent", "writer", "--disable", "--json")
    assert updated.json()["enabled"] is False
    assert demo("triggers", "update", trigger["id"], "--agent", "writer").code == 2
    enabled = demo("triggers", "update", trigger["id"], "--agent", "writer", "--enable", "--json")
    assert enabled.json()["enabled"] is True
    preview = demo("triggers", "preview", trigger["id"], "--agent", "writer", "--count", "2")
    assert "At 08:30 on Monday through Friday" in preview.out
    assert preview.out.count("2026-03-") == 2
    run = demo("triggers", "run", trigger["id"], "--agent", "writer", "--json")
    assert (run.json()["origin"], run.json()["status"]) == ("manual", "pending")
    assert run.json()["payload"] == {"team": "core"}
    given = demo(
        "triggers", "run", trigger["id"], "--agent", "writer", "--payload", '{"team": "infra"}',
        "--json",
    )  # fmt: skip
    assert given.json()["payload"] == {"team": "infra"}
    bad = demo("triggers", "run", trigger["id"], "--agent", "writer", "--payload", "[1]")
    assert bad.code == 2
    assert "--payload: must be a JSON object" in bad.err
    paused = demo("triggers", "list", "--paused", "--json")
    assert (paused.code, paused.json()) == (0, [])
    deleted = demo("triggers", "delete", trigger["id"], "--agent", "writer")
    assert (deleted.code, deleted.out) == (0, "")
    assert demo("triggers", "list", "--agent", "writer", "--json").json() == []


def test_a_trigger_can_come_from_a_file_with_options_on_top(demo: Run, tmp_path: Path) -> None:
    spec = tmp_path / "trigger.yaml"
    spec.write_text("name: from-file\nrun_at: 2026-03-08T07:00:00Z\npayload: {a: 1}\n")
    made = created_trigger(demo, "--file", str(spec), "--name", "renamed")
    assert (made["name"], made["run_at"], made["payload"]) == (
        "renamed",
        "2026-03-08T07:00:00Z",
        {"a": 1},
    )


def test_agents_can_be_a2a_agents_and_models(demo: Run) -> None:
    a2a = demo(
        "agents", "put", "helper", "--a2a", "https://agents.example.com/a2a",
        "--secret-env", "TICKWORK_TARGET_SECRET_HELPER", "--json",
    )  # fmt: skip
    assert a2a.code == 0, a2a.err
    assert a2a.json()["target"] == {
        "type": "a2a",
        "url": "https://agents.example.com/a2a",
        "protocol_version": "1.0",
        "has_secret": True,
        "secret": {"env": "TICKWORK_TARGET_SECRET_HELPER"},
    }
    model = demo(
        "agents", "put", "writer2", "--openai", "https://models.example.com/v1",
        "--model", "small-1", "--api", "chat", "--instructions", "Be brief.", "--secret", "sk",
        "--json",
    )  # fmt: skip
    assert model.code == 0, model.err
    shown = model.json()["target"]
    assert (shown["model"], shown["api"], shown["instructions"], shown["has_secret"]) == (
        "small-1",
        "chat",
        "Be brief.",
        True,
    )
    listed = demo("agents", "list")
    assert "openai small-1 at https://models.example.com/v1 (chat)" in listed.out
    missing = demo("agents", "put", "x", "--openai", "https://models.example.com/v1")
    assert (missing.code, "needs --model" in missing.err) == (2, True)


def test_a_trigger_gets_its_run_context_from_options(demo: Run) -> None:
    made = created_trigger(
        demo,
        "--name",
        "digest",
        "--cron",
        "0 7 * * *",
        "--conversation",
        "continue",
        "--daily-token-budget",
        "20000",
        "--run-as",
        "user:ada",
    )
    assert (made["conversation"], made["daily_token_budget"], made["run_as"]) == (
        "continue",
        20000,
        "user:ada",
    )
    changed = demo(
        "triggers", "update", made["id"], "--agent", "writer", "--conversation", "new", "--json"
    )
    assert changed.json()["conversation"] == "new"
    refused = demo("triggers", "update", made["id"], "--agent", "writer", "--run-as", "a ")
    assert refused.code != 0
    assert "printable ASCII" in refused.err


def test_invocations_are_listed_shown_cancelled_and_rerun(
    demo: Run, ctx: Context, clock: FakeClock
) -> None:
    trigger = created_trigger(demo, "--name", "often", "--cron", "*/15 * * * *")
    dispatch_at(ctx, clock, 15)
    first = demo("triggers", "run", trigger["id"], "--agent", "writer", "--json").json()
    scope = ("--agent", "writer", "--trigger", trigger["id"])
    listed = demo("invocations", "list", *scope)
    assert listed.code == 0
    assert "manual" in listed.out
    assert "schedule" in listed.out
    assert len(demo("invocations", "list", "--json").json()) == 2
    assert len(demo("invocations", "list", "--limit", "1", "--json").json()) == 1
    pending = demo("invocations", "list", "--status", "pending", "--json").json()
    assert len(pending) == 2
    shown = demo("invocations", "get", first["id"])
    assert first["id"] in shown.out
    cancelled = demo("invocations", "cancel", first["id"], *scope, "--json")
    assert cancelled.json()["status"] == "cancelled"
    again = demo("invocations", "cancel", first["id"], *scope)
    assert again.code == 1
    assert again.err.startswith("error: 409 Conflict: ")
    rerun = demo("invocations", "rerun", first["id"], *scope, "--json")
    assert rerun.json()["origin"] == "rerun"
    by_trigger = demo("invocations", "list", "--trigger", trigger["id"], "--json").json()
    assert len(by_trigger) == 3
    manual = demo("invocations", "list", "--agent", "writer", "--origin", "manual", "--json")
    assert [i["id"] for i in manual.json()] == [first["id"]]
    assert demo("invocations", "list", "--agent", "nobody").code == 1  # the server's 422
    assert demo("invocations", "list", "--status", "lost").code == 1  # the server's 422


def test_errors_are_one_line_with_an_exit_code(demo: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = demo("triggers", "create", "--agent", "writer", "--name", "x", "--cron", "61 * * * *")
    assert bad.code == 1
    assert bad.err == (
        "error: 422 Invalid request: cron_expression: minute: 61 is out of range 0-59\n"
    )
    missing = demo("triggers", "get", "trg_" + "0" * 26, "--agent", "writer")
    assert missing.code == 1
    assert "404 Not found: scheduled trigger" in missing.err
    no_key = demo("projects", "list", TICKWORK_API_KEY="")
    assert (no_key.code, no_key.err) == (2, "error: --api-key (or TICKWORK_API_KEY) is required\n")
    no_project = demo("agents", "list", TICKWORK_PROJECT="")
    assert no_project.code == 2
    assert "--project (or TICKWORK_PROJECT) is required" in no_project.err
    wrong_key = demo("projects", "list", "--api-key", "tw_wrong")
    assert (wrong_key.code, wrong_key.err) == (
        1,
        "error: 401 Unauthorized: the API key is not valid\n",
    )
    payload = demo("triggers", "create", "--agent", "writer", "--name", "x", "--payload", "[1]")
    assert payload.code == 2
    assert "--payload: must be a JSON object" in payload.err
    dots = demo("agents", "get", "..")
    assert dots.code == 2
    assert "non-empty name" in dots.err
    bad_url = demo("projects", "list", "--url", "ftp://x")
    assert bad_url.code == 2
    monkeypatch.setattr(remote, "http_client_factory", None)
    monkeypatch.setattr(sync_module, "blocking_pause", lambda seconds: None)
    down = demo("projects", "list", "--url", "http://127.0.0.1:9")
    assert down.code == 3
    assert down.err.startswith("error: cannot reach tickwork: GET http://127.0.0.1:9/api/v1/")
    assert len(down.err.splitlines()) == 1


# --- definition push -------------------------------------------------------------------

DEFINITION = """\
agents:
  - id: writer
    target: {type: python, handler: agents.run}
    triggers:
      - name: morning
        cron_expression: "30 8 * * 1-5"
        timezone: Europe/Berlin
  - id: reviewer
    target:
      type: webhook
      url: https://agents.example.com/reviewer
    triggers:
      - name: weekly
        cron_expression: "{cron}"
      - name: once
        run_at: 2026-03-08T07:00:00Z
"""


def write(tmp_path: Path, text: str, name: str = "definition.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_yaml_definition_is_pushed_and_what_changed_is_printed(demo: Run, tmp_path: Path) -> None:
    path = write(tmp_path, DEFINITION.replace("{cron}", "0 16 * * FRI"))
    pushed = demo("definition", "push", path)
    assert pushed.code == 0, pushed.err
    assert "ref main: revision" in pushed.out
    assert "(changed)" in pushed.out
    again = demo("definition", "push", path, "--json").json()
    assert again["changed"] is False
    assert again["summary"]["triggers"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 3,
    }
    once = again["agents"][1]["triggers"][1]
    assert once["run_at"] == "2026-03-08T07:00:00Z"
    as_json = write(tmp_path, json.dumps({"agents": []}), "empty.json")
    refused = demo("definition", "push", as_json, "--ref", "main")
    assert refused.code == 1
    assert "would delete all 2 agents of ref main" in refused.err
    assert refused.err.rstrip().endswith("(here: --allow-empty)")
    emptied = demo("definition", "push", as_json, "--ref", "main", "--allow-empty", "--json")
    assert emptied.json()["summary"]["agents"]["deleted"] == 2


def test_the_servers_field_errors_point_at_the_lines_of_the_file(demo: Run, tmp_path: Path) -> None:
    path = write(tmp_path, DEFINITION.replace("{cron}", "61 * * * *"))
    refused = demo("definition", "push", path)
    assert refused.code == 1
    lines = refused.err.splitlines()
    assert lines[0] == "error: 422 Invalid request: the definition was not pushed"
    assert lines[1] == (
        f"  {path}:14: agents[1].triggers[0].cron_expression: minute: 61 is out of range 0-59"
    )
    missing = write(tmp_path, "agents:\n  - id: a\n    triggers: []\n", "missing.yaml")
    refused = demo("definition", "push", missing)
    assert refused.code == 1
    assert f"{missing}:2: agents[0].target: Field required" in refused.err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("agents:\n  - id: a\n    cron_expression: @daily\n", ":3:22: not valid YAML"),
        (
            "agents: []\nagents: []\n",
            ":2: key 'agents' appears twice in one mapping (first on line 1)",
        ),
        ("agents: [1, .inf]\n", ":1: agents[1]: infinities and NaN"),
        ("agents:\n  - {1: a}\n", ":2: agents[0]: key 1 must be text"),
        ("- agents\n", "must be a mapping"),
        ("{}\n---\n{}\n", "not valid YAML"),
    ],
)
def test_a_file_that_cannot_be_a_definition_is_refused_before_sending(
    demo: Run, tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path, text)
    refused = demo("definition", "push", path)
    assert refused.code == 2, refused.err
    assert refused.err.startswith(f"error: {path}")
    assert says in refused.err


def test_an_unreadable_or_invalid_json_file_is_a_usage_error(demo: Run, tmp_path: Path) -> None:
    missing = demo("definition", "push", str(tmp_path / "nope.yaml"))
    assert missing.code == 2
    assert "cannot read" in missing.err
    broken = write(tmp_path, '{"agents": [}', "broken.json")
    refused = demo("definition", "push", broken)
    assert refused.code == 2
    assert f"{broken}:1:13: not valid JSON" in refused.err


def test_definitions_are_read_back_and_diffed_before_a_push(demo: Run, tmp_path: Path) -> None:
    path = write(tmp_path, DEFINITION.replace("{cron}", "0 16 * * FRI"))
    diff = demo("definition", "diff", path)
    assert diff.code == 0, diff.err
    assert "dry run: would change" in diff.out
    assert "would change" in diff.out
    assert demo("triggers", "list", "--json").json() == []  # nothing was written
    assert demo("definition", "push", path).code == 0
    exported = tmp_path / "exported.yaml"
    got = demo("definition", "get", "--output", str(exported))
    assert got.code == 0, got.err
    assert "wrote the definition of ref main" in got.err
    assert exported.read_text().startswith("agents:\n- id: reviewer\n")
    again = demo("definition", "diff", str(exported), "--json").json()
    assert (again["dry_run"], again["changed"]) == (True, False)
    as_json = demo("definition", "get", "--json").json()
    assert [a["id"] for a in as_json["agents"]] == ["reviewer", "writer"]
    assert demo("definition", "push", str(exported), "--json").json()["changed"] is False
    dry = demo("definition", "push", str(exported), "--dry-run", "--json").json()
    assert dry["dry_run"] is True
    printed = demo("definition", "get")
    assert printed.out.startswith("agents:")


def test_the_projects_triggers_are_listed_across_agents_with_their_last_run(
    demo: Run, ctx: Context, clock: FakeClock
) -> None:
    assert demo("agents", "put", "reviewer", "--handler", "agents.run").code == 0
    created_trigger(demo, "--name", "Daily report", "--cron", "*/15 * * * *")
    made = demo(
        "triggers", "create", "--agent", "reviewer", "--name", "review", "--cron", "@daily",
        "--disable", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    dispatch_at(ctx, clock, 15)
    everything = demo("triggers", "list")
    assert everything.code == 0
    assert "reviewer" in everything.out
    assert "Daily report" in everything.out
    assert [t["name"] for t in demo("triggers", "list", "--json").json()] == [
        "Daily report",
        "review",
    ]
    assert [t["name"] for t in demo("triggers", "list", "--search", "REP", "--json").json()] == [
        "Daily report"
    ]
    assert [t["name"] for t in demo("triggers", "list", "--disabled", "--json").json()] == [
        "review"
    ]
    assert len(demo("triggers", "list", "--limit", "1", "--json").json()) == 1
    unknown = demo("triggers", "list", "--agent", "nobody")
    assert unknown.code == 1
    assert "has no agent 'nobody'" in unknown.err


def test_triggers_are_listed_by_health_with_their_failures(
    demo: Run, ctx: Context, clock: FakeClock
) -> None:
    created_trigger(demo, "--name", "flaky", "--cron", "*/15 * * * *", "--max-retries", "0")
    created_trigger(demo, "--name", "fine", "--cron", "0 0 1 1 *")
    dispatch_at(ctx, clock, 15)
    work_one(ctx, "failed", "boom")
    failing = demo("triggers", "list", "--health", "failing", "--json").json()
    assert [(t["name"], t["consecutive_failures"]) for t in failing] == [("flaky", 1)]
    assert [t["name"] for t in demo("triggers", "list", "--health", "ok", "--json").json()] == [
        "fine"
    ]
    table = demo("triggers", "list")
    assert "failing (1 failed)" in table.out
    unknown = demo("triggers", "list", "--health", "sick")
    assert unknown.code == 1
    assert "'sick' is not one of ok, failing, late, paused, disabled" in unknown.err
