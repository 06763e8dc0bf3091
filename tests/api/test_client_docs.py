"""Every example of docs/client.md runs, in order, against the app in-process: the
```python blocks (a ``# file: NAME`` block is written to a file, the others are run in one
namespace), the ```yaml files, each ```sh command (which must succeed) and each
```console block of tickwork commands (whose output must be what the page shows). The
client example of the README runs too."""

from __future__ import annotations

import json
import re
import shlex
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

import tickwork.testing
from tests.api.helpers import new_tenant
from tickwork.cli import remote
from tickwork.cli.main import app as cli
from tickwork.client import Client
from tickwork.services.context import Context
from tickwork.targets import python, schedules

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "client.md"
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE = re.compile(r"^# file: (\S+)\n")
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=\$\((.*)\)$")
VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)\}?")
REMOTE_GROUPS = {"projects", "agents", "triggers", "invocations", "backfills", "definition", "sync"}


def blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def jq(document: Any, program: str) -> str:
    """``jq -r`` for the paths the page uses: ``.[0].id``."""
    for name, index in re.findall(r"\.([A-Za-z_]\w*)|\[(\d+)\]", program):
        document = document[name] if name else document[int(index)]
    return str(document)


@pytest.fixture
def in_process(
    app: FastAPI, ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Clients made without an http_client, and the CLI's, send to the app; the
    tenant ``default`` has a key in TICKWORK_API_KEY; the current directory is empty."""
    who = new_tenant(ctx, "default")
    async_http = httpx.AsyncClient
    opened: list[Any] = []

    def sync_client(**_: Any) -> httpx.Client:
        opened.append(TestClient(app))
        client: httpx.Client = opened[-1]
        return client

    def async_client(**_: Any) -> httpx.AsyncClient:
        return async_http(transport=httpx.ASGITransport(app=app))

    monkeypatch.setattr(httpx, "Client", sync_client)
    monkeypatch.setattr(httpx, "AsyncClient", async_client)
    monkeypatch.setattr(remote, "http_client_factory", lambda: sync_client())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # Where processes record the handlers they serve, the API accepts only those.
    register = getattr(tickwork.testing, "register_handlers", None)
    if register is not None:
        register(ctx, ("reports",))
    env = {"TICKWORK_API_KEY": who.key, "TICKWORK_PROJECT": "demo", "KEY": who.key}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    sys.modules.pop("myagents", None)


def tickwork_cli(words: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    assert words[0] == "tickwork", words
    if words[1] == "sync":  # a fresh process: its own registries, the module imported anew
        monkeypatch.setattr(python, "default_registry", python.HandlerRegistry())
        monkeypatch.setattr(schedules, "default_schedules", schedules.ScheduleRegistry())
        sys.modules.pop("myagents", None)
    result = CliRunner().invoke(cli, words[1:], env={"COLUMNS": "160"}, prog_name="tickwork")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


def test_every_example_in_the_client_guide_works(
    in_process: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    namespace: dict[str, Any] = {"__name__": "client_guide"}
    variables: dict[str, str] = {}
    ran = {"python": 0, "sh": 0, "console": 0}
    for language, text in blocks(GUIDE.read_text()):
        named = FILE.match(text)
        if named is not None:
            (tmp_path / named.group(1)).write_text(text)
            continue
        if language == "python":
            exec(compile(text, str(GUIDE), "exec"), namespace)
            ran["python"] += 1
        elif language == "sh":
            for command in text.replace("\\\n", " ").strip().splitlines():
                assigned = ASSIGNMENT.match(command)
                pipeline = assigned.group(2) if assigned else command
                line, _, filter_ = pipeline.partition("|")
                words = shlex.split(VARIABLE.sub(lambda m: variables[m.group(1)], line))
                code, output = tickwork_cli(words, monkeypatch)
                assert code == 0, (command, output)
                if assigned:
                    program = shlex.split(filter_)
                    assert program[:2] == ["jq", "-r"], command
                    start = output.index("[")  # stdout; notes, if any, follow on stderr
                    variables[assigned.group(1)] = jq(
                        json.JSONDecoder().raw_decode(output[start:])[0], program[2]
                    )
                ran["sh"] += 1
        elif language == "console":
            commands = [line for line in text.splitlines() if line.startswith("$ ")]
            if not all(shlex.split(c[2:])[:2][-1] in REMOTE_GROUPS for c in commands):
                continue  # setting up: not tickwork commands over the API
            shown = text.split("\n$ ")
            for part in shown:
                command, *expected = part.removeprefix("$ ").rstrip("\n").split("\n")
                _, output = tickwork_cli(shlex.split(command), monkeypatch)
                assert output.splitlines() == expected, command
                ran["console"] += 1
    assert ran == {"python": 8, "sh": 29, "console": 2}
    assert set(variables) == {"TRIGGER"}


def test_the_readme_shows_the_client_next_to_curl(in_process: dict[str, str]) -> None:
    text = README.read_text()
    assert text.splitlines()[3:5] == [
        "make serve   # start tickwork on the embedded SQLite database ./tickwork.db",
        "make test    # every check and the whole test suite, on SQLite and on PostgreSQL",
    ]
    [example] = [code for language, code in blocks(text) if "tickwork.Client" in code]
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(example, str(README), "exec"), namespace)
    with Client("http://127.0.0.1:8080", in_process["KEY"], project="demo") as client:
        [trigger] = list(client.triggers.list("reporter"))
    assert (trigger.name, trigger.timezone, trigger.payload) == (
        "weekday digest",
        "Europe/Berlin",
        {"topic": "sales"},
    )
