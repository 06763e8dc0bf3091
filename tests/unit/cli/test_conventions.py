"""The command line follows the usual conventions: ``--version``, shell completion, help
that shows a placeholder, the default and the environment variable of every option,
progress while ``deploy restart`` retries, and a clear word on unsupported databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import tickwork
from tickwork.cli import deploy
from tickwork.cli.main import app

TICKWORK = Path(sys.executable).with_name("tickwork")
WIDE = {"COLUMNS": "200"}
# The options that may also be set in the environment, per command.
ENV_VARS = {
    "serve": {
        "--host": "TICKWORK_HOST",
        "--port": "TICKWORK_PORT",
        "--database-url": "TICKWORK_DATABASE_URL",
        "--app": "TICKWORK_APP",
        "--concurrency": "TICKWORK_WORKER_CONCURRENCY",
        "--exit-when-superseded": "TICKWORK_EXIT_WHEN_SUPERSEDED",
    },
    "db upgrade": {"--database-url": "TICKWORK_DATABASE_URL"},
    "db vacuum": {"--database-url": "TICKWORK_DATABASE_URL"},
    "tenants create": {"--database-url": "TICKWORK_DATABASE_URL"},
    "keys create": {"--database-url": "TICKWORK_DATABASE_URL"},
    "secrets rotate": {"--database-url": "TICKWORK_DATABASE_URL"},
    "deploy restart": {"--url": "TICKWORK_URL", "--secret": "TICKWORK_DEPLOY_SECRET"},
}
# The commands over the HTTP API: the server, the key and the tenant; and the project.
REMOTE = {"--url": "TICKWORK_URL", "--api-key": "TICKWORK_API_KEY", "--tenant": "TICKWORK_TENANT"}
PROJECT = {**REMOTE, "--project": "TICKWORK_PROJECT"}
ENV_VARS |= {f"projects {c}": REMOTE for c in ("list", "get", "put", "delete", "pause", "resume")}
ENV_VARS |= {f"agents {c}": PROJECT for c in ("list", "get", "put", "delete")}
ENV_VARS |= {
    f"triggers {c}": PROJECT
    for c in ("list", "get", "create", "update", "delete", "run", "preview", "pause", "resume",
              "skip")
}  # fmt: skip
ENV_VARS |= {
    f"invocations {c}": PROJECT
    for c in ("list", "get", "cancel", "rerun", "cancel-many", "rerun-many")
}
ENV_VARS |= {f"backfills {c}": PROJECT for c in ("create", "list", "get", "cancel")}
ENV_VARS |= {f"definition {c}": PROJECT for c in ("get", "diff")}
ENV_VARS |= {"definition push": PROJECT, "sync": {**PROJECT, "--app": "TICKWORK_APP"}}


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})}, prog_name="tickwork")


def commands() -> Iterator[tuple[str, Any]]:
    """Every leaf command, by its path (``keys create``)."""

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "commands"):  # a group (typer ships its own copy of Click)
            for name, sub in command.commands.items():
                yield from walk(f"{prefix} {name}".strip(), sub)
        else:
            yield prefix, command

    yield from walk("", typer.main.get_command(app))


COMMANDS = dict(commands())


def test_version_prints_the_package_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"tickwork {tickwork.__version__}\n"
    assert tickwork.__version__ != "0+unknown"


def test_the_package_is_typed() -> None:
    assert (Path(tickwork.__file__).parent / "py.typed").exists()


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_shows_placeholders_defaults_and_environment_variables(path: str) -> None:
    result = invoke(*path.split(), "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # wrapping does not matter
    for marker in ("<str>", "<int", "<bool>", "<list", "<path>", "<float", "╭"):
        assert marker not in text, (path, marker, result.stdout)
    command = COMMANDS[path]
    for param in command.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        name = max(param.opts, key=len)
        if not param.is_flag:
            assert param.metavar, (path, name)
            assert param.metavar.isupper(), (path, name)
            assert f"{name} {param.metavar}" in text, (path, name)
        expected = ENV_VARS.get(path, {}).get(name)
        assert param.envvar == expected, (path, name, param.envvar)
        if expected:
            assert f"env var: {expected}" in text, (path, name)
        has_default = param.default not in (None, False, "") or "default" in (param.help or "")
        if not param.required and not param.is_flag and not expected:
            assert has_default, (path, name)
    for param in command.params:
        if param.param_type_name == "argument":
            assert param.metavar, (path, param.name)
            assert param.help if hasattr(param, "help") else None, (path, param.name)


def test_every_command_and_group_is_described() -> None:
    result = invoke("--help")
    assert "--version" in result.stdout
    assert "--install-completion" in result.stdout
    groups = ("db", "tenants", "keys", "deploy", "secrets", "projects", "agents", "triggers")
    for group in (*groups, "invocations", "definition"):
        listing = invoke(group, "--help").stdout
        assert "Commands:" in listing, group
    tenants = " ".join(invoke("tenants", "create", "--help").stdout.split())
    assert "isolation boundary" in tenants
    assert "1-64 letters" in tenants
    assert "tickwork keys create --tenant TENANT" in tenants


def test_shell_completion_completes_commands_and_options() -> None:
    environ = {**os.environ, "_TICKWORK_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
    words = subprocess.run(
        [str(TICKWORK)],
        env={**environ, "COMP_WORDS": "tickwork se"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert words.stdout.split() == ["serve", "secrets"]
    options = subprocess.run(
        [str(TICKWORK)],
        env={**environ, "COMP_WORDS": "tickwork serve --po", "COMP_CWORD": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert options.stdout.split() == ["--port"]
    # Typer guesses the shell from the parent process unless told not to (then it takes
    # the shell as the option's value): the guess depends on who runs the tests.
    script = subprocess.run(
        [str(TICKWORK), "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert "_tickwork_completion" in script.stdout
    assert "complete " in script.stdout


def test_environment_values_are_checked_and_named() -> None:
    result = invoke("serve", env={"TICKWORK_EXIT_WHEN_SUPERSEDED": "maybe"})
    assert result.exit_code == 2
    assert "TICKWORK_EXIT_WHEN_SUPERSEDED" in result.stderr
    assert "'maybe' is not a valid boolean" in result.stderr
    result = invoke("serve", env={"TICKWORK_PORT": "eighty"})
    assert result.exit_code == 2
    assert "TICKWORK_PORT" in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://user:hunter2@db/app", "mysql databases are not supported"),
        ("oracle://db/app", "oracle databases are not supported"),
        ("postgresql+psycopg2://db/app", "write postgresql://"),
        ("not a url", "not a database URL"),
    ],
)
def test_an_unsupported_database_names_the_supported_ones(url: str, says: str) -> None:
    result = invoke("db", "upgrade", "--database-url", url)
    assert result.exit_code == 2
    assert says in result.stderr
    assert "No module named" not in result.stderr
    assert "hunter2" not in result.stderr
    if "not supported" in says:
        assert "sqlite (sqlite:///path/to/tickwork.db) and postgresql" in result.stderr


# --- deploy restart says what it does while it retries -----------------------------------


class _Flaky(ThreadingHTTPServer):
    """Answers 502 ``failures`` times, then the restart's JSON."""

    daemon_threads = True

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.failures = failures


class _FlakyHandler(BaseHTTPRequestHandler):
    server: _Flaky

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.server.failures > 0:
            self.server.failures -= 1
            status, body = 502, b'{"detail": "starting"}'
        else:
            status = 200
            body = json.dumps({"run_id": "r2", "previous_run_id": "r1", "deployment_id": "d"})
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def flaky() -> Iterator[_Flaky]:
    server = _Flaky(failures=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_deploy_restart_reports_each_retry(flaky: _Flaky, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(deploy, "blocking_pause", waits.append)
    url = f"http://127.0.0.1:{flaky.server_port}"
    result = invoke(
        "deploy",
        "restart",
        "--attempts",
        "5",
        env={"TICKWORK_URL": url, "TICKWORK_DEPLOY_SECRET": "s"},
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["run_id"] == "r2"
    assert waits == [1.0, 2.0]
    assert result.stderr.splitlines() == [
        f"restarting the scheduler: POST {url}/api/deploy/restart-scheduler",
        "try 1 of 5 failed (502: starting); retrying in 1 s",
        "try 2 of 5 failed (502: starting); retrying in 2 s",
    ]
