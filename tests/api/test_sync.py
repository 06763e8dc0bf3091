"""``tickwork sync --app MODULE``: the schedules declared in code, pushed, re-pushed
without a change, and a removed decorator's trigger deleted; errors name the decorator."""

from __future__ import annotations

import json
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from tests.api.helpers import TenantKey
from tickwork.cli import remote
from tickwork.cli.main import app as cli
from tickwork.services import resources, triggers
from tickwork.services.context import Context
from tickwork.targets import python, schedules

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")

APP = """\
import tickwork


@tickwork.schedule("30 8 * * 1-5", timezone="Europe/Berlin", name="morning",
                   payload={"team": "core"}, message_template="Report for {{ team }}")
@tickwork.schedule("@hourly", name="hourly", overlap="skip")
@tickwork.handler("agents.run")
async def run(call: tickwork.TargetCall) -> None:
    return None


@tickwork.handler("reports.daily:v2")
@tickwork.schedule("0 18 * * *", name="evening", max_retries=3)
def daily(call: tickwork.TargetCall) -> None:
    return None
"""

Sync = Callable[..., tuple[int, str, str]]


@pytest.fixture
def sync(
    app: FastAPI, acme: TenantKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sync]:
    """``tickwork sync --app NAME`` of a module with this source, in a fresh process
    state (its own handler and schedule registries, the module imported anew)."""
    http = TestClient(app)
    monkeypatch.setattr(remote, "http_client_factory", lambda: http)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def run(source: str, *args: str, name: str = "myagents") -> tuple[int, str, str]:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        names.append(name)
        monkeypatch.setattr(python, "default_registry", python.HandlerRegistry())
        monkeypatch.setattr(schedules, "default_schedules", schedules.ScheduleRegistry())
        env = {
            "TICKWORK_URL": "http://testserver",
            "TICKWORK_API_KEY": acme.key,
            "TICKWORK_TENANT": "acme",
        }
        argv = ["sync", "--app", name, "--project", "demo", *args]
        result = CliRunner().invoke(cli, argv, env=env, prog_name="tickwork")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    resources.put_project(app.state.ctx, "acme", "demo", None, None)
    yield run
    for name in names:
        sys.modules.pop(name, None)
    http.close()


def summary(out: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(out)["summary"]
    return found


def test_sync_applies_then_changes_nothing_then_deletes_what_the_code_dropped(
    sync: Sync, ctx: Context
) -> None:
    code, out, err = sync(APP, "--json")
    assert code == 0, err
    assert summary(out)["agents"]["created"] == 2
    assert summary(out)["triggers"]["created"] == 3
    agents = {a.id: a for a in resources.list_agents(ctx, "acme", "demo", "main")}
    assert set(agents) == {"agents.run", "reports.daily-v2"}
    assert agents["reports.daily-v2"].target == {"type": "python", "handler": "reports.daily:v2"}
    morning = next(
        t
        for t in triggers.list_triggers(ctx, "acme", "demo", "agents.run", None, None, 10)
        if t.name == "morning"
    )
    assert (morning.timezone, morning.payload, morning.message_template) == (
        "Europe/Berlin",
        {"team": "core"},
        "Report for {{ team }}",
    )

    code, out, err = sync(APP)
    assert code == 0, err
    assert "(no change)" in out
    assert "unchanged" in out

    code, out, err = sync(
        APP.replace('@tickwork.schedule("@hourly", name="hourly", overlap="skip")\n', ""), "--json"
    )
    assert code == 0, err
    assert summary(out)["triggers"] == {"created": 0, "updated": 0, "deleted": 1, "unchanged": 2}
    names = {
        t.name for t in triggers.list_triggers(ctx, "acme", "demo", "agents.run", None, None, 10)
    }
    assert names == {"morning"}


def test_sync_pushes_to_the_ref_given(sync: Sync, ctx: Context) -> None:
    code, _, err = sync(APP, "--ref", "feature/x")
    assert code == 0, err
    assert {a.id for a in resources.list_agents(ctx, "acme", "demo", "feature/x")} == {
        "agents.run",
        "reports.daily-v2",
    }
    assert resources.list_agents(ctx, "acme", "demo", "main") == []


def test_what_the_server_refuses_names_the_decorators_line(sync: Sync, tmp_path: Path) -> None:
    code, out, err = sync(APP.replace('"0 18 * * *"', '"0 25 * * *"'))
    assert code == 1
    assert out == ""
    first, second = err.splitlines()
    assert first == "error: 422 Invalid request: the definition was not pushed"
    assert second == (
        f"  {tmp_path / 'myagents.py'}:13 (schedule 'evening'): "
        "agents[1].triggers[0].cron_expression: hour: 25 is out of range 0-23"
    )


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("x = 1\n", "myagents registers no @tickwork.handler: nothing to sync"),
        (
            "import tickwork\n\n@tickwork.schedule('0 9 * * *')\ndef lone(call): ...\n",
            "lone has a schedule but is not a registered handler",
        ),
        (
            "import tickwork\n\n@tickwork.schedule('0 9 * * *', retries=3)\n"
            "@tickwork.handler('h')\ndef h(call): ...\n",
            "retries: is not a field of a scheduled trigger (@schedule at ",
        ),
        ("import nothing_here\n", "importing app module 'myagents' failed"),
    ],
)
def test_a_module_that_describes_no_valid_definition_is_refused(
    sync: Sync, source: str, says: str
) -> None:
    code, out, err = sync(source)
    assert code == 2
    assert out == ""
    assert says in err


def test_sync_needs_an_app_and_a_project(sync: Sync) -> None:
    result = CliRunner().invoke(cli, ["sync", "--project", "demo"], env={"TICKWORK_API_KEY": "k"})
    assert result.exit_code == 2
    assert "--app (or TICKWORK_APP) is required" in result.stderr
    result = CliRunner().invoke(cli, ["sync", "--app", "m"], env={"TICKWORK_API_KEY": "k"})
    assert result.exit_code == 2
    assert "--project (or TICKWORK_PROJECT) is required" in result.stderr
