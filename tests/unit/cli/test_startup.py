"""``tickwork --version`` and ``--help`` start without the server: the commands import
the database layer, the HTTP server and the API when they run, not when the command line
starts (each command module imports them inside its functions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tickwork.cli import serving
from tickwork.runtime import node

# Modules a plain `tickwork --version` must not load: each costs a noticeable part of a
# second, and none is needed to print a version or the help.
HEAVY = ("sqlalchemy", "alembic", "uvicorn", "fastapi", "psycopg", "tickwork.storage")

PROBE = """
import json, sys
from tickwork.cli.main import main
sys.argv = ["tickwork", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"sqlalchemy",
    "alembic", "uvicorn", "fastapi", "psycopg"} or m.startswith("tickwork.storage"))),
    file=sys.stderr)
"""


def loaded_by(*args: str) -> set[str]:
    """The heavy modules loaded by ``tickwork ARGS`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


@pytest.mark.parametrize(
    "args", [("--version",), ("--help",), ("serve", "--help"), ("tenants", "--help")]
)
def test_the_command_line_starts_without_the_server(args: tuple[str, ...]) -> None:
    assert loaded_by(*args) == set()


def test_serve_knows_the_roles_the_runtime_runs() -> None:
    assert serving.ROLES == node.ROLES
