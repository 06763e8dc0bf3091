"""``tickwork serve`` that cannot start: one line saying what to change, a non-zero exit,
and nothing written to the database (SPEC §9, Processes)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickwork.cli.main import app


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield int(sock.getsockname()[1])
    sock.close()


@pytest.fixture
def fresh_file(tmp_path: Path) -> Path:
    """Where a database would be created: it must not be."""
    return tmp_path / "never.db"


def test_a_port_in_use_stops_the_start_before_the_database_is_touched(
    busy_port: int, fresh_file: Path
) -> None:
    code, out, err = invoke(
        "serve", "--port", str(busy_port), "--database-url", f"sqlite:///{fresh_file}"
    )
    assert code == 2
    assert out == ""
    assert err == f"error: port {busy_port} is in use: pass --port or set TICKWORK_PORT\n"
    assert not fresh_file.exists()


def test_an_address_not_on_this_machine_is_named(fresh_file: Path) -> None:
    code, _, err = invoke(
        "serve", "--host", "192.0.2.1", "--port", "0", "--database-url", f"sqlite:///{fresh_file}"
    )
    assert code == 2
    assert err.startswith("error: cannot listen on 192.0.2.1: no such address on this machine")
    assert err.count("\n") == 1
    assert not fresh_file.exists()


def test_an_app_module_that_cannot_load_stops_the_start_before_the_database(
    fresh_file: Path,
) -> None:
    code, _, err = invoke(
        "serve",
        "--port",
        "0",
        "--app",
        "no_such_app_module",
        "--database-url",
        f"sqlite:///{fresh_file}",
    )
    assert code == 2
    assert err.startswith("error: cannot import app module 'no_such_app_module'")
    assert err.count("\n") == 1
    assert not fresh_file.exists()


def test_an_unreachable_database_is_one_line_too() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: the connection is refused at once
    code, _, err = invoke(
        "serve", "--port", "0", "--database-url", f"postgresql://x@127.0.0.1:{port}/x"
    )
    assert code == 2
    assert err.startswith("error: cannot open the database")
    assert "Traceback" not in err
