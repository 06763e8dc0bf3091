"""docs/api.md's Errors and Limits tables say what the server does: every problem type it
answers with, and the request body cap."""

from __future__ import annotations

import re
from pathlib import Path

from tickwork.api.limits import MAX_BODY_BYTES
from tickwork.api.problems import TYPES

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def table_rows(heading: str) -> list[list[str]]:
    text = GUIDE.read_text()
    section = text[text.index(heading) + 1 :].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_the_errors_table_lists_every_status_and_type_the_server_answers() -> None:
    listed = {(int(status), kind.strip("`")) for status, kind, _ in table_rows("\n## Errors")}
    # Each status's own type, and the quota's, which shares 429.
    assert listed == {*TYPES.items(), (429, "quota-exceeded")}


def test_the_limits_table_states_the_request_body_cap() -> None:
    [cap] = [limit for what, limit in table_rows("\n## Limits") if what == "a request body"]
    found = re.match(r"(\d+) MiB", cap)
    assert found
    assert int(found.group(1)) * 1024 * 1024 == MAX_BODY_BYTES
    assert cap.endswith("`413`")
