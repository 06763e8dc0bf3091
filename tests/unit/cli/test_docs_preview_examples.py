"""Every ```console example of `tickwork preview` in docs/semantics.md prints exactly what
the page shows: the block's first line is the command (after ``$ ``), the rest its output."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickwork.cli.main import app

PAGE = Path(__file__).resolve().parents[3] / "docs" / "semantics.md"
BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = []
    for match in BLOCK.finditer(PAGE.read_text(encoding="utf-8")):
        command, _, output = match.group(1).partition("\n")
        assert command.startswith("$ tickwork preview "), command
        found.append((command.removeprefix("$ "), output))
    return found


def test_the_page_has_examples_in_three_zones() -> None:
    zones = {re.search(r"--tz (\S+)", command).group(1) for command, _ in examples()}  # type: ignore[union-attr]
    assert {"Europe/Berlin", "America/New_York", "Australia/Sydney"} <= zones


@pytest.mark.parametrize(("command", "output"), examples())
def test_each_preview_example_prints_what_the_page_shows(command: str, output: str) -> None:
    words = shlex.split(command)
    assert words[:2] == ["tickwork", "preview"]
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == output
