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


# -- recurrence rules and calendars (SPEC §16) ------------------------------------------


def test_an_rrule_previews_from_its_start() -> None:
    code, out, err = invoke(
        "preview", "--rrule", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=17",
        "--rrule-start", "2026-01-01T00:00:00", "--tz", "Europe/Berlin", "--after", AFTER,
        "--count", "2",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        "Tue 2026-03-31 17:00:00 +02:00 CEST  = 2026-03-31T15:00:00Z",
        "Thu 2026-04-30 17:00:00 +02:00 CEST  = 2026-04-30T15:00:00Z",
        "Monthly on Monday, Tuesday, Wednesday, Thursday, Friday (the last of each month) at "
        "17:00, from 2026-01-01 00:00:00 (time zone Europe/Berlin)",
    ]


def test_an_rrule_without_a_start_starts_at_after() -> None:
    code, out, _ = invoke(
        "preview", "--rrule", "FREQ=HOURLY;INTERVAL=5", "--after", AFTER, "--count", "2", "--json"
    )
    assert code == 0
    assert json.loads(out) == ["2026-03-06T17:00:00Z", "2026-03-06T22:00:00Z"]


def test_excluded_and_shifted_slots_are_printed_with_their_reasons() -> None:
    code, out, err = invoke(
        "preview", "0 9 * * *", "--tz", "Europe/Berlin", "--after", "2026-12-23T12:00:00Z",
        "--holidays", "DE-BY", "--exclude-date", "2026-12-24", "--exclude-date", "2026-12-31",
        "--weekends", "exclude", "--count", "6",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        "Thu 2026-12-24 09:00:00 +01:00 CET   = 2026-12-24T08:00:00Z  skipped: excluded date "
        "2026-12-24",
        "Fri 2026-12-25 09:00:00 +01:00 CET   = 2026-12-25T08:00:00Z  skipped: holiday: "
        "Christmas Day",
        "Sat 2026-12-26 09:00:00 +01:00 CET   = 2026-12-26T08:00:00Z  skipped: holiday: "
        "Second Day of Christmas",
        "Sun 2026-12-27 09:00:00 +01:00 CET   = 2026-12-27T08:00:00Z  skipped: weekend: Sunday",
        "Mon 2026-12-28 09:00:00 +01:00 CET   = 2026-12-28T08:00:00Z",
        "Tue 2026-12-29 09:00:00 +01:00 CET   = 2026-12-29T08:00:00Z",
        "At 09:00 every day (time zone Europe/Berlin)",
        "Calendar: except weekends, public holidays in DE-BY, 2 excluded date(s): such slots "
        "are skipped",
    ]


def test_json_with_a_calendar_gives_status_reason_and_nominal_instant() -> None:
    code, out, _ = invoke(
        "preview", "0 9 25 12 *", "--tz", "Europe/London", "--after", "2026-12-01T00:00:00Z",
        "--holidays", "GB-ENG", "--weekends", "exclude", "--shift", "next_business_day",
        "--count", "1", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == [
        {
            "at": "2026-12-29T09:00:00Z",
            "status": "run",
            "reason": "shifted from 2026-12-25 (holiday: Christmas Day)",
            "nominal": "2026-12-25T09:00:00Z",
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rrule", "FREQ=DAILY", "0 9 * * *"], "error: give a cron expression (EXPR) or"),
        ([], "error: give a cron expression (EXPR) or --rrule RULE"),
        (["--rrule", "FREQ=MONTHLY;BYSETPOS=1"], "error: rrule: BYSETPOS requires another"),
        (["--rrule", "FREQ=DAILY", "--rrule-start", "soon"], "error: rrule_start: 'soon' is"),
        (["0 9 * * *", "--rrule-start", "2026-01-01T00:00:00"], "error: rrule_start: goes with"),
        (["0 9 * * *", "--holidays", "XX"], "error: calendar.holidays: unknown country 'XX'"),
        (["0 9 * * *", "--exclude-date", "24.12."], "error: calendar.exclude_dates[0]: "),
        (["0 9 * * *", "--weekends", "never"], "error: calendar.weekends: 'never' is not one"),
        (["0 9 * * *", "--shift", "later"], "error: calendar.shift: 'later' is not one of"),
    ],
)
def test_bad_rule_or_calendar_input_is_one_line_on_stderr_and_exit_2(
    args: list[str], message: str
) -> None:
    code, out, err = invoke("preview", *args, "--after", AFTER)
    assert code == 2
    assert out == ""
    assert err.startswith(message), err
    assert err.count("\n") == 1
