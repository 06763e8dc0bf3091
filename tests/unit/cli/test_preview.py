from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tickwork.cli.main import app

AFTER = "2026-03-06T12:00:00Z"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_it_lists_the_next_five_instants_with_local_time_and_utc() -> None:
    code, out, err = invoke("preview", "30 2 * * *", "--tz", "America/New_York", "--after", AFTER)
    assert code == 0, err
    assert err == ""
    assert out.splitlines() == [
        "Sat 2026-03-07 02:30:00 -05:00 EST   = 2026-03-07T07:30:00Z",
        # 02:30 does not exist that day: the fixed-time rule fires at 03:00 EDT.
        "Sun 2026-03-08 03:00:00 -04:00 EDT   = 2026-03-08T07:00:00Z",
        "Mon 2026-03-09 02:30:00 -04:00 EDT   = 2026-03-09T06:30:00Z",
        "Tue 2026-03-10 02:30:00 -04:00 EDT   = 2026-03-10T06:30:00Z",
        "Wed 2026-03-11 02:30:00 -04:00 EDT   = 2026-03-11T06:30:00Z",
        "At 02:30 every day (time zone America/New_York)",
    ]


def test_json_prints_only_an_array_of_utc_instants() -> None:
    code, out, _ = invoke(
        "preview", "0 9 * * 1-5", "--after", AFTER, "--count", "3", "--json", "--tz", "UTC"
    )
    assert code == 0
    assert json.loads(out) == [
        "2026-03-09T09:00:00Z",
        "2026-03-10T09:00:00Z",
        "2026-03-11T09:00:00Z",
    ]


def test_after_is_exclusive_and_accepts_an_offset() -> None:
    code, out, _ = invoke(
        "preview", "0 * * * *", "--after", "2026-03-08T08:00:00+01:00", "--count", "1", "--json"
    )
    assert code == 0
    assert json.loads(out) == ["2026-03-08T08:00:00Z"]


def test_a_seconds_field_and_a_half_hour_zone() -> None:
    code, out, _ = invoke(
        "preview", "*/10 * * * * *", "--tz", "Asia/Kolkata", "--after", AFTER, "--count", "2"
    )
    assert code == 0
    assert out.splitlines() == [
        "Fri 2026-03-06 17:30:10 +05:30 IST   = 2026-03-06T12:00:10Z",
        "Fri 2026-03-06 17:30:20 +05:30 IST   = 2026-03-06T12:00:20Z",
        "Every 10th second of every minute (time zone Asia/Kolkata)",
    ]


def test_without_after_it_starts_from_now() -> None:
    code, out, _ = invoke("preview", "@hourly", "--json", "--count", "2")
    assert code == 0
    assert len(json.loads(out)) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["61 * * * *"], "error: cron_expression: minute: 61 is out of range 0-59"),
        (["0 0 31 2 *"], "error: cron_expression: day-of-month: 31 never occurs in February"),
        (["* * * * *", "--tz", "Mars/Olympus"], "error: timezone: unknown time zone"),
        (["* * * * *", "--after", "2026-03-06T12:00:00"], "error: after: "),
        (["* * * * *", "--after", "next tuesday"], "error: after: "),
        (["* * * * *", "--count", "0"], "error: count: must be between 1 and 1000"),
        (["* * * * *", "--count", "1001"], "error: count: must be between 1 and 1000"),
        (["* * * * *", "--count", "many"], "error: count: 'many' is not a whole number"),
    ],
)
def test_invalid_input_is_one_line_on_stderr_and_exit_2(args: list[str], message: str) -> None:
    code, out, err = invoke("preview", *args, "--json")
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickwork", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_runs_as_a_real_process() -> None:
    done = run_cli("preview", "0 9 * * *", "--tz", "Europe/Berlin", "--after", AFTER, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        "2026-03-07T08:00:00Z",
        "2026-03-08T08:00:00Z",
        "2026-03-09T08:00:00Z",
        "2026-03-10T08:00:00Z",
        "2026-03-11T08:00:00Z",
    ]


def test_a_real_process_reports_bad_input_on_stderr_with_status_2() -> None:
    done = run_cli("preview", "61 * * * *", "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "error: cron_expression: minute: 61 is out of range 0-59\n"
