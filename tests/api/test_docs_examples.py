"""Every shell example in docs/api.md works: each ```sh block is one curl command (or
``VAR=$(curl ... | jq -r '.path')``, or ``VAR=$(curl -o /dev/null -w '%header{name}' ...)``
for a header of the answer), run in order against the app in-process with $TICKWORK_URL
and $KEY filled in, and each must answer 2xx."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import TenantKey

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BASE = "http://tickwork.example"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=\$\((.*)\)$", re.DOTALL)
VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)\}?")
JQ_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
QUIET_FLAGS = {"-s", "-S", "-sS", "-Ss", "--silent", "--show-error", "-f", "--fail"}
HEADER_OUT = re.compile(r"^%header\{([A-Za-z0-9-]+)\}$")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    # -w '%header{name}': what the command prints is that header of the answer.
    writes_header: str | None = None


def shell_blocks(text: str) -> list[str]:
    """The commands of the ```sh blocks, continuation lines joined."""
    return [m.group(1).replace("\\\n", " ").strip() for m in BLOCK.finditer(text)]


def expand(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in variables, f"${name} is used before the guide sets it"
        return variables[name]

    return VARIABLE.sub(value, text)


def parse_curl(command: str, variables: dict[str, str]) -> Request:
    words = shlex.split(command)
    assert words[0] == "curl", command
    method: str | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    writes_header: str | None = None
    urls: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        if word in QUIET_FLAGS:
            continue
        if word in ("-X", "--request"):
            method = next(rest)
        elif word in ("-H", "--header"):
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = expand(value.strip(), variables)
        elif word in ("-d", "--data", "--data-raw"):
            body = next(rest)
        elif word in ("-o", "--output"):
            assert next(rest) == "/dev/null", command
        elif word in ("-w", "--write-out"):
            wanted = HEADER_OUT.match(next(rest))
            assert wanted is not None, f"the test knows only -w '%header{{name}}': {command}"
            writes_header = wanted.group(1)
        else:
            assert not word.startswith("-"), f"the test does not know curl's {word}"
            urls.append(expand(word, variables))
    assert len(urls) == 1, command
    assert urls[0].startswith(BASE + "/"), urls[0]
    method = method or ("POST" if body is not None else "GET")
    return Request(method, urls[0].removeprefix(BASE), headers, body, writes_header)


def jq(document: Any, program: str) -> str:
    """``jq -r`` for the simple paths the guide uses: ``.items[0].id``."""
    assert JQ_STEP.sub("", program) == "", f"unsupported jq program {program!r}"
    for name, index in JQ_STEP.findall(program):
        document = document[name] if name else document[int(index)]
    return str(document)


def send(client: TestClient, request: Request) -> Any:
    response = client.request(
        request.method, request.path, headers=request.headers, content=request.body
    )
    assert 200 <= response.status_code < 300, (request, response.text)
    return response


def test_every_curl_example_in_the_api_guide_succeeds(client: TestClient, acme: TenantKey) -> None:
    variables = {"TICKWORK_URL": BASE, "KEY": acme.key}
    commands = shell_blocks(GUIDE.read_text())
    for command in commands:
        assigned = ASSIGNMENT.match(command)
        if assigned is None:
            send(client, parse_curl(command, variables))
            continue
        name, pipeline = assigned.groups()
        curl, _, filter_ = pipeline.partition("|")
        request = parse_curl(curl, variables)
        if request.writes_header is not None:
            assert not filter_, command
            variables[name] = send(client, request).headers[request.writes_header]
            continue
        jq_words = shlex.split(filter_)
        assert jq_words[:2] == ["jq", "-r"], command
        assert len(jq_words) == 3, command
        response = send(client, request)
        variables[name] = jq(response.json(), jq_words[2])
    # The walk-through: project, agent, definition, upcoming runs, the trigger id,
    # preview, run now (also with a payload of its own), the invocation list and one
    # invocation, cancel, rerun, the branch push, list and delete; pause, resume, skip,
    # a backfill's dry run, the backfill, its progress and its cancel, the project's
    # pause and resume, the bulk cancel and rerun; a create sent twice with one
    # Idempotency-Key, an ETag and a PATCH with If-Match, a dry run, the definition read
    # back, the project's triggers, one invocation by its id and a filtered list.
    assert len(commands) == 35
    assert {"TRIGGER", "INVOCATION", "BACKFILL", "ETAG"} <= set(variables)
    # The guide says `.items[0].id` is the writer's first trigger, morning-report.
    trigger = client.get(
        f"/api/v1/tenants/acme/projects/demo/agents/writer/scheduled-triggers/{variables['TRIGGER']}",
        headers={"Authorization": f"Bearer {acme.key}"},
    )
    assert trigger.json()["name"] == "morning-report"
    # What the guide says the dry run answers, and what the backfill did.
    backfill = client.get(
        f"/api/v1/tenants/acme/projects/demo/agents/writer/scheduled-triggers/"
        f"{variables['TRIGGER']}/backfills/{variables['BACKFILL']}",
        headers={"Authorization": f"Bearer {acme.key}"},
    ).json()
    assert (backfill["slots"], backfill["created"], backfill["status"]) == (5, 5, "cancelled")
    assert trigger.json()["max_retries"] == 5  # the PATCH with If-Match went ahead
    listed = client.get(
        "/api/v1/tenants/acme/projects/demo/agents/writer/scheduled-triggers",
        headers={"Authorization": f"Bearer {acme.key}"},
    ).json()["items"]
    # The create sent twice made one trigger; the dry run changed nothing.
    assert [t["name"] for t in listed] == ["morning-report", "hourly-check", "evening-report"]


def test_the_guide_shows_only_commands_the_test_runs() -> None:
    text = GUIDE.read_text()
    # Shell examples the test cannot run are written as ```console, never as ```sh.
    for command in shell_blocks(text):
        first = ASSIGNMENT.match(command)
        assert (first.group(2) if first else command).startswith("curl "), command
    for match in re.finditer(r"```json\n(.*?)```", text, re.DOTALL):
        json.loads(match.group(1))  # the sample answers are valid JSON
