"""Log lines cannot be forged through the values they carry (SPEC §9)."""

from __future__ import annotations

import json
import logging

import pytest

from tickwork.logging import JsonFormatter, TextFormatter, get_logger

HOSTILE = [
    "bot\n2026-03-02T09:00:00.00Z info    trigger disabled tenant=victim",
    "bot\rforged",
    "a=b",
    'quote"d',
    "tab\there",
    "line\u2028separator",
    "next\x85line",
    "bell\x07",
    "",
]


def _line(formatter: logging.Formatter, caplog: pytest.LogCaptureFixture, **fields: object) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tickwork.test"):
        get_logger("tickwork.test").info("attempt started", **fields)
    [record] = caplog.records
    return formatter.format(record)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_field_value_stays_inside_its_field_in_text(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    line = _line(TextFormatter(), caplog, agent=value, tenant="acme")
    assert line.splitlines() == [line]
    assert line.isprintable()
    # The value is one quoted field: the tenant field after it is still the real one.
    assert line.endswith(" tenant=acme")
    assert line.count(" agent=") == 1


def test_a_plain_value_is_written_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    line = _line(TextFormatter(), caplog, agent="reporter", tenant="acme")
    assert " attempt started " in line
    assert line.endswith(" agent=reporter tenant=acme")


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_field_value_stays_inside_its_field_in_json(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    line = _line(JsonFormatter(), caplog, agent=value)
    assert line.splitlines() == [line]
    assert json.loads(line)["agent"] == value
