"""The client library and the CLI against a live ``tickwork serve`` on loopback: every
resource, pages, problems as ApiError, a retry through a proxy that loses the first
answer, the CLI and ``tickwork sync`` as subprocesses. Few and short: real time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypedDict

import httpx
import pytest

from tickwork.client import ApiError, AsyncClient, Client, RetryPolicy

from .conftest import Api, Receiver, Server, wait_until

pytestmark = pytest.mark.slow
Start = Callable[..., tuple[Server, Api]]
TICKWORK = Path(sys.executable).with_name("tickwork")
FAST = RetryPolicy(retries=3, backoff=0.05)


class Window(TypedDict):
    """The past a backfill covers, as the keyword arguments of plan() and create()."""

    from_: datetime
    to: datetime


def key_of(api: Api) -> str:
    return api.client.headers["Authorization"].removeprefix("Bearer ")


def test_the_client_manages_every_resource_of_a_live_server(
    tickwork: Start, receiver: Receiver
) -> None:
    server, api = tickwork()
    key = key_of(api)
    with Client(server.url, key, tenant="acme", project="proj", retries=FAST) as c:
        assert [p.id for p in c.projects.list()] == ["proj"]
        assert [a.id for a in c.agents.list()] == ["bot", "failing", "slow"]
        assert c.agents.get("bot").target.type == "webhook"
        made = [
            c.triggers.create("bot", name=f"t{n}", cron_expression="0 9 * * *") for n in range(3)
        ]
        assert sorted(t.id for t in c.triggers.list("bot", page_size=2)) == sorted(
            t.id for t in made
        )
        changed = c.triggers.update("bot", made[0].id, timezone="Asia/Kolkata")
        assert changed.timezone == "Asia/Kolkata"
        assert len(c.triggers.preview("bot", made[0].id, count=2).next_runs) == 2
        runs = [c.triggers.run("bot", made[0].id) for _ in range(3)]
        scope = {"agent": "bot", "trigger_id": made[0].id}
        wait_until(
            lambda: all(c.invocations.get(r.id, **scope).status == "completed" for r in runs),
            what="the runs to complete",
        )
        assert [i.id for i in c.invocations.list(**scope, page_size=2)] == [r.id for r in runs][
            ::-1
        ]
        done = c.invocations.get(runs[0].id, **scope)
        assert done.conversation_id == "conv-" + done.id[-6:]
        with pytest.raises(ApiError) as raised:
            c.invocations.cancel(done.id, **scope)
        assert raised.value.status == 409
        assert c.invocations.rerun(done.id, **scope).origin == "rerun"
        assert c.upcoming.get(limit=1).items
        pushed = c.definitions.push(
            {"agents": [{"id": "x", "target": {"type": "webhook", "url": receiver.url + "/ok"}}]},
            ref="preview",
        )
        assert (pushed.ref, pushed.summary.agents.created) == ("preview", 1)
        assert {r.name for r in c.refs.list()} == {"main", "preview"}
        minted = c.keys.create(name="ci", scope="read")
        assert minted.id in {k.id for k in c.keys.list()}
        c.keys.revoke(minted.id)
        assert c.quotas.get().triggers.used == 3
        c.triggers.delete("bot", made[2].id)
        with pytest.raises(ApiError) as raised:
            c.triggers.create("bot", name="bad", cron_expression="0 0 31 2 *")
        assert raised.value.status == 422
        assert raised.value.errors[0].field == "cron_expression"

        # An operator's controls.
        paused = c.triggers.pause("bot", made[0].id, reason="live")
        assert (paused.paused, paused.paused_reason) == (True, "live")
        assert c.triggers.resume("bot", made[0].id).paused is False
        assert c.triggers.skip("bot", made[0].id, 2).skip_remaining == 2
        assert c.projects.pause(reason="live").paused is True
        assert c.projects.resume().paused is False
        now = datetime.now(UTC)
        window: Window = {"from_": now - timedelta(days=3), "to": now - timedelta(hours=1)}
        plan = c.backfills.plan("bot", made[1].id, **window)
        assert plan.slots in (2, 3)  # 09:00 UTC daily in the last three days
        backfill = c.backfills.create("bot", made[1].id, **window, max_concurrency=1)
        assert [b.id for b in c.backfills.list("bot", made[1].id)] == [backfill.id]
        assert c.backfills.get("bot", made[1].id, backfill.id).slots == plan.slots
        assert c.backfills.cancel("bot", made[1].id, backfill.id).status == "cancelled"
        counted = c.invocations.rerun_many(status="completed", agent="bot", dry_run=True)
        assert counted.matched >= 3
        got = c.triggers.get("bot", made[1].id)
        c.triggers.update("bot", made[1].id, if_match=got, max_retries=2)
        with pytest.raises(ApiError) as raised:
            c.triggers.update("bot", made[1].id, if_match=got, max_retries=3)
        assert raised.value.status == 412

    async def asynchronously() -> list[str]:
        async with AsyncClient(server.url, key, tenant="acme", project="proj") as ac:
            return [t.name async for t in ac.triggers.list("bot", page_size=1)]

    assert sorted(asyncio.run(asynchronously())) == ["t0", "t1"]


def test_every_page_of_a_long_list_is_fetched(tickwork: Start) -> None:
    server, api = tickwork()
    with Client(server.url, key_of(api), tenant="acme", project="proj", retries=FAST) as c:
        made = [
            c.triggers.create("slow", name=f"p{n}", cron_expression="@yearly") for n in range(7)
        ]
        ids = [t.id for t in c.triggers.list("slow", page_size=3)]  # three pages
        assert sorted(ids) == sorted(t.id for t in made)
        runs = [c.triggers.run("slow", made[0].id).id for _ in range(5)]
        listed = [i.id for i in c.invocations.list(trigger_id=made[0].id, page_size=2)]
        assert listed == runs[::-1]


# --- a proxy that loses the first answer ---------------------------------------------


@dataclass
class LosingProxy:
    """Forwards every request to the server; the first answer to a request whose
    method and path match ``lose`` is read from the server and then dropped: the
    connection closes as if the network had lost it."""

    upstream: str
    lose: set[tuple[str, str]]
    forwarded: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def proxy_to() -> Iterator[Callable[[str, set[tuple[str, str]]], LosingProxy]]:
    servers: list[ThreadingHTTPServer] = []
    clients: list[httpx.Client] = []

    def start(upstream: str, lose: set[tuple[str, str]]) -> LosingProxy:
        proxy = LosingProxy(upstream, set(lose))
        http = httpx.Client(timeout=10)
        clients.append(http)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                path = self.path.split("?")[0]
                proxy.forwarded.append((self.command, path, headers))
                answer = http.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body
                )
                if (self.command, path) in proxy.lose:
                    proxy.lose.discard((self.command, path))
                    self.close_connection = True  # the answer is lost on the way
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = forward

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
        return proxy

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    for client in clients:
        client.close()


def test_a_lost_answer_is_retried_with_the_same_idempotency_key(
    tickwork: Start,
    receiver: Receiver,
    proxy_to: Callable[[str, set[tuple[str, str]]], LosingProxy],
) -> None:
    server, api = tickwork()
    base = "/api/v1/tenants/acme/projects/proj"
    definition_path = f"{base}/definition"
    triggers_path = f"{base}/agents/bot/scheduled-triggers"
    run_path = f"{triggers_path}/{{id}}/run"
    proxy = proxy_to(server.url, {("PUT", definition_path), ("POST", triggers_path)})
    definition = {
        "agents": [
            {
                "id": "bot",
                "target": {"type": "webhook", "url": receiver.url + "/ok", "secret": "s3cret"},
                "triggers": [{"name": "daily", "cron_expression": "0 9 * * *"}],
            }
        ]
    }
    with Client(proxy.url, key_of(api), tenant="acme", project="proj", retries=FAST) as c:
        pushed = c.definitions.push(definition)
        # The first push was applied and its answer lost; the retry found nothing to do.
        assert [m for m, p, _ in proxy.forwarded if p == definition_path] == ["PUT", "PUT"]
        assert pushed.changed is False
        assert pushed.summary.triggers.unchanged == 1
        assert [t.name for t in c.triggers.list("bot")] == ["daily"]

        created = c.triggers.create("bot", name="again", cron_expression="0 10 * * *")
        posts = [h for m, p, h in proxy.forwarded if (m, p) == ("POST", triggers_path)]
        assert len(posts) == 2
        keys = {h.get("Idempotency-Key") or h.get("idempotency-key") for h in posts}
        assert len(keys) == 1
        assert keys.pop()
        # The server honours Idempotency-Key: the retry got the first answer, and there
        # is one trigger "again", not two.
        assert created.name == "again"
        assert sorted(t.name for t in c.triggers.list("bot")) == ["again", "daily"]

        # A run whose answer is lost runs once.
        path = run_path.format(id=created.id)
        proxy.lose.add(("POST", path))
        run = c.triggers.run("bot", created.id)
        assert [m for m, p, _ in proxy.forwarded if p == path] == ["POST", "POST"]
        manual = list(c.invocations.list(trigger_id=created.id, origin="manual"))
        assert [i.id for i in manual] == [run.id]


# --- the CLI and sync as processes -----------------------------------------------------


def tw(
    server: Server, key: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TICKWORK_URL": server.url,
        "TICKWORK_API_KEY": key,
        "TICKWORK_TENANT": "acme",
        "TICKWORK_PROJECT": "proj",
    }
    return subprocess.run(
        [str(TICKWORK), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_cli_talks_to_a_live_server(tickwork: Start, tmp_path: Path) -> None:
    server, api = tickwork()
    key = key_of(api)
    created = tw(server, key, "triggers", "create", "--agent", "bot", "--name", "cli",
                 "--cron", "*/5 * * * *", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    trigger = json.loads(created.stdout)
    listed = tw(server, key, "triggers", "list", "--agent", "bot")
    assert trigger["id"] in listed.stdout
    paused = tw(server, key, "triggers", "pause", trigger["id"], "--agent", "bot", "--json")
    assert (paused.returncode, json.loads(paused.stdout)["paused"]) == (0, True)
    resumed = tw(server, key, "triggers", "resume", trigger["id"], "--agent", "bot")
    assert (resumed.returncode, resumed.stderr) == (0, "")
    version = tw(server, key, "--version")
    assert version.stdout.startswith("tickwork ")
    missing = tw(server, key, "projects", "get", "nope")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "error: 404 Not found: project 'nope' not found\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "agents:\n  - id: bot\n    target: {type: webhook, url: 'https://a.example'}\n"
        "    triggers:\n      - name: x\n        timezone: Mars/Olympus\n"
        "        cron_expression: '0 9 * * *'\n"
    )
    refused = tw(server, key, "definition", "push", str(bad))
    assert refused.returncode == 1
    assert f"{bad}:6: agents[0].triggers[0].timezone:" in refused.stderr


APP = """\
import tickwork


@tickwork.schedule("0 9 * * 1-5", timezone="Europe/Berlin", name="weekday")
@tickwork.schedule("0 12 * * *", name="noon")
@tickwork.handler("agents.run")
def run(call):
    return {"conversation_id": "c"}
"""


def test_sync_pushes_the_schedules_of_the_deployed_code(tickwork: Start, tmp_path: Path) -> None:
    (tmp_path / "scheduled_app.py").write_text(APP)
    server, api = tickwork("--app", "scheduled_app")
    key = key_of(api)
    first = tw(server, key, "sync", "--app", "scheduled_app", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)["summary"]
    assert summary["triggers"]["created"] == 2
    assert summary["agents"]["deleted"] == 3  # the ref belongs to the code now
    again = tw(server, key, "sync", "--app", "scheduled_app", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(no change)" in again.stdout
    (tmp_path / "scheduled_app.py").write_text(
        APP.replace('@tickwork.schedule("0 12 * * *", name="noon")\n', "")
    )
    dropped = tw(server, key, "sync", "--app", "scheduled_app", "--json", cwd=tmp_path)
    assert json.loads(dropped.stdout)["summary"]["triggers"]["deleted"] == 1
    listed = api.client.get(api.url("/agents/agents.run/scheduled-triggers")).json()["items"]
    assert [t["name"] for t in listed] == ["weekday"]
