"""Settings are one validated model: a bad value stops the start with one line naming
the variable and what it accepts, and no secret shows in a repr (SPEC §15)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tickwork.errors import ValidationError
from tickwork.settings import Settings


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TICKWORK_LOG_LEVEL", "verbose", "expected 'DEBUG', 'INFO', 'WARNING', 'ERROR' or"),
        ("TICKWORK_LOG_FORMAT", "xml", "expected 'text' or 'json'"),
        ("TICKWORK_ALLOW_PRIVATE_TARGETS", "maybe", "expected 1/0, true/false, yes/no or on/off"),
        ("TICKWORK_PORT", "eighty", "expected a whole number, got 'eighty'"),
        ("TICKWORK_PORT", "70000", "less than or equal to 65535"),
        ("TICKWORK_WORKER_LEASE_SECONDS", "1", "greater than or equal to 2"),
        ("TICKWORK_TENANT_CONCURRENCY", "0", "greater than or equal to 1"),
        ("TICKWORK_QUOTA_TRIGGERS", "-1", "greater than or equal to 0"),
        ("TICKWORK_ALLOWED_TARGET_NETWORKS", "10.0.0.0/33", "is not a valid network"),
        ("TICKWORK_SECRET_KEY", "not-a-key", "entry 1 is not a Fernet key"),
        ("TICKWORK_LATE_GRACE", "0", "greater than or equal to 1"),
        ("TICKWORK_PAUSE_AFTER_FAILURES", "-1", "greater than or equal to 0"),
        ("TICKWORK_NOTIFICATION_MAX_ATTEMPTS", "lots", "a whole number"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings.from_env()
    assert caught.value.field == variable
    assert expected in caught.value.message


def test_values_are_read_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWORK_LOG_LEVEL", "debug")
    monkeypatch.setenv("TICKWORK_PORT", "9000")
    monkeypatch.setenv("TICKWORK_APP", "myagents")
    monkeypatch.setenv("TICKWORK_ALLOWED_TARGET_NETWORKS", "10.0.0.0/8, Hooks.Internal.")
    monkeypatch.setenv("TICKWORK_WORKER_CONCURRENCY", "")  # empty: the default
    settings = Settings.from_env(port=9100)
    assert settings.log_level == "DEBUG"
    assert settings.port == 9100
    assert settings.app_module == "myagents"
    assert settings.allowed_target_networks == ("10.0.0.0/8", "hooks.internal")
    assert settings.worker_concurrency == 10


def test_no_secret_shows_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "x" * 43 + "="
    monkeypatch.setenv("TICKWORK_ADMIN_TOKEN", "admin-token-value")
    monkeypatch.setenv("TICKWORK_DEPLOY_SECRET", "deploy-secret-value")
    monkeypatch.setenv("TICKWORK_SECRET_KEY", key)
    monkeypatch.setenv("TICKWORK_DATABASE_URL", "postgresql://tw:db-password@db/tickwork")
    settings = Settings.from_env()
    shown = repr(settings) + str(settings)
    for secret in ("admin-token-value", "deploy-secret-value", key, "db-password"):
        assert secret not in shown
    assert "postgresql://tw:***@db/tickwork" in shown
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "admin-token-value"


def test_building_settings_in_code_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWORK_WORKER_CONCURRENCY", "3")
    assert Settings().worker_concurrency == 10
    assert Settings().with_(worker_concurrency=4).worker_concurrency == 4
    with pytest.raises(ValueError, match="less than or equal to 10000"):
        Settings(worker_concurrency=10_001)


def test_serve_with_a_bad_value_stops_with_one_line(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tickwork", "serve", "--port", "0"],
        env={"TICKWORK_LOG_LEVEL": "verbose", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: TICKWORK_LOG_LEVEL: expected 'DEBUG'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "event"),
    [
        ([], {"TICKWORK_LOG_LEVEL": "verbose"}, "TICKWORK_LOG_LEVEL: expected 'DEBUG'"),
        (["--role", "nope"], {}, "--role: unknown role 'nope' (use api, scheduler or worker)"),
    ],
)
def test_in_json_mode_a_refused_start_is_one_json_line(
    tmp_path: object, args: list[str], env: dict[str, str], event: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tickwork", "serve", "--port", "0", *args],
        env={"TICKWORK_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        check=False,
    )
    assert result.returncode == 2
    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert (line["level"], line["logger"]) == ("error", "tickwork.cli")
    assert line["event"].startswith(event)
    assert result.stdout == ""


def test_the_health_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWORK_LATE_GRACE", "90")
    monkeypatch.setenv("TICKWORK_PAUSE_AFTER_FAILURES", "5")
    settings = Settings.from_env()
    assert (settings.late_grace, settings.pause_after_failures) == (90.0, 5)
