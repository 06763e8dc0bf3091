"""Transactions are opened by the services, never by a route or a command.

import-linter keeps ``tickwork.api`` and ``tickwork.cli`` from importing the SQL store,
the engine or SQLAlchemy (pyproject.toml); a transaction can still be opened through the
context the routes are handed (``ctx.db.read()``), which this test looks for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tickwork"
# ctx.db.read() / ctx.db.write(), or a SQLAlchemy transaction on an engine or connection.
OPENS_A_TRANSACTION = re.compile(
    r"\.db\.(read|write)\(|\b(engine|conn|connection|session)\.begin\("
)


def _opened(package: str) -> list[str]:
    found = []
    for path in sorted((SRC / package).rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OPENS_A_TRANSACTION.search(line):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("package", ["api", "cli"])
def test_no_transaction_is_opened_in(package: str) -> None:
    assert _opened(package) == []


def test_the_pattern_finds_a_transaction_opened_through_the_context() -> None:
    assert OPENS_A_TRANSACTION.search("    with ctx.db.read() as tx:")
    assert OPENS_A_TRANSACTION.search("with engine.begin() as conn:")
    assert not OPENS_A_TRANSACTION.search("stored = idempotency.begin(ctx, tenant_id, request)")
