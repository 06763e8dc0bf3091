"""Importing the client costs what a client needs: httpx and pydantic, never the server
(its web framework, database drivers, migrations, cron library). Checked in a fresh
interpreter, since this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_ONLY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "psycopg",
    "cronsim",
    "holidays",
    "dateutil",
    "prometheus_client",
    "cryptography",
    # The agent targets' SDKs are the workers' business.
    "a2a",
    "openai",
    "httpx2",
    "google",
    "tickwork.api",
    "tickwork.services",
    "tickwork.storage",
    "tickwork.runtime",
    "tickwork.targets",
    "tickwork.settings",
)


def loaded_after(statement: str) -> list[str]:
    script = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    modules: list[str] = json.loads(done.stdout)
    return modules


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in SERVER_ONLY or m.startswith(SERVER_ONLY)]


@pytest.mark.parametrize(
    "statement",
    [
        "import tickwork.client",
        "import tickwork; tickwork.Client; tickwork.AsyncClient; tickwork.ApiError",
        "from tickwork import Client, ApiError",
        "import tickwork.wire",
    ],
)
def test_the_client_imports_none_of_the_server(statement: str) -> None:
    modules = loaded_after(statement)
    assert heavy(modules) == []
    assert "httpx" in modules or statement == "import tickwork.wire"


def test_import_tickwork_alone_loads_next_to_nothing() -> None:
    modules = loaded_after("import tickwork")
    assert [m for m in modules if m.startswith("tickwork")] == ["tickwork", "tickwork.errors"]
    assert "httpx" not in modules
    assert "pydantic" not in modules


def test_the_public_names_still_resolve() -> None:
    names = loaded_after(
        "import tickwork\n"
        "from tickwork import handler, schedule, TargetCall, TargetResult, PermanentError\n"
        "assert callable(handler) and callable(schedule)\n"
        "assert tickwork.__version__ != '0+unknown'\n"
        "from tickwork import *"
    )
    assert "tickwork.targets.python" in names
    import tickwork

    assert set(tickwork.__all__) <= set(dir(tickwork))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tickwork.nope
