"""docs/ui.md's examples work as written: the key command makes a read key that signs in
and sees no button, and the serve line's variables are settings tickwork reads."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ui.conftest import TestClient, sign_in
from tickwork.cli.main import app as cli
from tickwork.services import tenants
from tickwork.services.context import Context
from tickwork.settings import Settings

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "ui.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def commands() -> list[str]:
    return [m.group(1).strip() for m in BLOCK.finditer(GUIDE.read_text())]


def test_the_guide_has_its_two_commands() -> None:
    assert len(commands()) == 2


def test_the_read_key_of_the_guide_signs_in_and_sees_no_button(
    ui_ctx: Context, database_url: str, clients: Callable[..., TestClient]
) -> None:
    tenants.create_tenant(ui_ctx, "default")
    words = shlex.split(commands()[0])
    assert words[:3] == ["tickwork", "keys", "create"]
    done = CliRunner().invoke(cli, [*words[1:], "--database-url", database_url])
    assert done.exit_code == 0, done.output
    key = done.stdout.strip().splitlines()[-1]
    client = sign_in(clients(), key)
    page = client.get("/ui/projects").text
    assert "(read)" in page


def test_the_serve_line_of_the_guide_sets_settings_tickwork_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    *assignments, program, command = shlex.split(commands()[1])
    assert (program, command) == ("tickwork", "serve")
    for assignment in assignments:
        name, value = assignment.split("=", 1)
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "change-me"
    assert settings.session_secret is not None
    assert settings.session_secret.get_secret_value() == "also-change-me"
