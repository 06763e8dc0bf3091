"""docs/agents.md works as written: its ```sh curl commands run in order against the app
in-process (each must answer 2xx), its LangGraph receiver runs on loopback in front of
a LangGraph runs API, and the triggers the guide creates then fire on a fake clock, twice,
against real agents: an A2A agent built with a2a-sdk's server classes and an
OpenAI-compatible server. The example hosts of the guide are these servers."""

from __future__ import annotations

import asyncio
import itertools
import re
import shlex
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.api.test_docs_examples import ASSIGNMENT, jq, parse_curl, shell_blocks
from tickwork.api.app import create_app
from tickwork.services import tenants
from tickwork.settings import Settings
from tickwork.storage.records import COMPLETED
from tickwork.testing import FakeClock

from .conftest import World
from .servers import A2AAgent, ModelServer, _serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "agents.md"
PYTHON = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class LangGraphRuns:
    """A LangGraph runs API: threads and their runs, as langgraph_sdk calls them."""

    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def langgraph() -> Iterator[tuple[str, LangGraphRuns]]:
    seen = LangGraphRuns()
    numbers = itertools.count(1)

    async def wait(request: Request) -> JSONResponse:
        body = await request.json()
        thread_id = request.path_params["thread_id"]
        with seen.lock:
            seen.runs.append((thread_id, body))
        said = body["input"]["messages"]
        return JSONResponse(
            {"messages": [*said, {"role": "assistant", "content": f"plan #{next(numbers)}"}]}
        )

    app = Starlette(routes=[Route("/threads/{thread_id}/runs/wait", wait, methods=["POST"])])
    with _serve(app) as base:
        yield base, seen


@pytest.fixture
def receiver(
    langgraph: tuple[str, LangGraphRuns], monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> Iterator[str]:
    """The guide's LangGraph receiver, served on loopback; yields its URL. Its clock is
    the fake one tickwork signs with, as a receiver's clock agrees with the sender's."""

    class ReceiversTime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> ReceiversTime:
            return cls.fromtimestamp(clock.now().timestamp(), tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", ReceiversTime)
    monkeypatch.setenv("TICKWORK_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("LANGGRAPH_API_URL", langgraph[0])
    [code] = PYTHON.findall(GUIDE.read_text())
    namespace: dict[str, Any] = {"__name__": "agents_md_receiver"}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    with _serve(namespace["app"]) as base:
        yield f"{base}/tickwork"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        deployment_id="dep_test",
        version="test",
        allowed_target_networks=("127.0.0.0/8",),
    )


def run_guide(client: TestClient, key: str, hosts: dict[str, str]) -> dict[str, str]:
    variables = {"TICKWORK_URL": "http://tickwork.example", "KEY": key}
    commands = shell_blocks(GUIDE.read_text())
    for command in commands:
        for example, real in hosts.items():
            command = command.replace(example, real)
        assigned = ASSIGNMENT.match(command)
        pipeline = assigned.group(2) if assigned else command
        curl, _, filter_ = pipeline.partition("|")
        request = parse_curl(curl, variables)
        response = client.request(
            request.method, request.path, headers=request.headers, content=request.body
        )
        assert 200 <= response.status_code < 300, (command, response.text)
        if assigned is not None:
            words = shlex.split(filter_)
            assert words[:2] == ["jq", "-r"], command
            variables[assigned.group(1)] = jq(response.json(), words[2])
    assert len(commands) == 9
    return variables


def test_the_agents_guide_runs_and_its_triggers_run_twice(
    world_with: Callable[[Settings], Coroutine[Any, Any, World]],
    settings: Settings,
    agent: A2AAgent,
    models: ModelServer,
    receiver: str,
    langgraph: tuple[str, LangGraphRuns],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWORK_TARGET_SECRET_RESEARCHER", "a2a-token")
    monkeypatch.setenv("TICKWORK_TARGET_SECRET_MODELS", "sk-models")
    hosts = {
        "https://agents.example.com/a2a": agent.url,
        "https://models.example.com/v1": models.base_url,
        "https://langgraph.example.com/tickwork": receiver,
    }

    async def scenario() -> None:
        w = await world_with(settings)
        _, key = tenants.create_key(w.ctx, "acme", "docs")
        with TestClient(create_app(w.ctx)) as client:
            variables = await asyncio.to_thread(run_guide, client, key, hosts)
            # The next two days, hour by hour: every trigger of the guide fires once a day.
            for _ in range(48):
                await w.run_next(3600)
            usage = client.get(
                "/api/v1/tenants/acme/projects/demo/agents/writer/scheduled-triggers/"
                f"{variables['REPORT']}/usage",
                headers={"Authorization": f"Bearer {key}"},
            ).json()
        with w.ctx.db.read() as tx:
            runs = tx.list_invocations("acme", "demo", limit=50)
        by_trigger: dict[str, list[Any]] = {}
        for inv in sorted(runs, key=lambda i: i.scheduled_for):
            by_trigger.setdefault(inv.trigger_name, []).append(inv)
        assert set(by_trigger) == {"daily-digest", "team-report", "daily-plan"}
        for name, invocations in by_trigger.items():
            assert [i.status for i in invocations] == [COMPLETED, COMPLETED], (
                name,
                [i.last_error for i in invocations],
            )

        # The A2A agent: the same context, the previous run's text, run as Ada.
        first, second = by_trigger["daily-digest"]
        sends = agent.calls("SendMessage")
        assert sends[1]["params"]["message"]["contextId"] == first.conversation_id
        assert second.message == (
            "Digest the news on solar. Yesterday you wrote: "
            "echo: Digest the news on solar. Yesterday you wrote: "
        )
        assert sends[0]["params"]["message"]["metadata"]["run_as"] == "user:ada@example.com"
        assert agent.recorder.requests[0].headers["authorization"] == "Bearer a2a-token"

        # The model: instructions, the previous response, usage within the budget.
        first, second = by_trigger["team-report"]
        one, two = models.bodies("/v1/responses")
        assert one["instructions"] == "You write the team report: five bullet points, no preamble."
        assert two["previous_response_id"] == first.result["response_id"]
        assert first.result["output_text"] in two["input"]
        assert usage["daily_token_budget"] == 20000
        assert [day["invocations"] for day in usage["items"]] == [1, 1]

        # LangGraph: both runs on one thread, which is the conversation.
        first, second = by_trigger["daily-plan"]
        (thread_1, body_1), (thread_2, _) = langgraph[1].runs
        assert thread_1 == thread_2 == first.conversation_id == second.conversation_id
        assert body_1["input"]["messages"] == [{"role": "user", "content": "Plan the day."}]
        assert body_1["metadata"]["run_as"] == "svc:planning"
        assert first.result["response"] == {"conversation_id": thread_1, "answer": "plan #1"}

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def test_the_guide_shows_only_commands_the_test_runs() -> None:
    for command in shell_blocks(GUIDE.read_text()):
        first = ASSIGNMENT.match(command)
        assert (first.group(2) if first else command).startswith("curl "), command
