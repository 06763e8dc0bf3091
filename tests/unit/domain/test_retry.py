from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwork.domain.retry import (
    MAX_RETRY_DELAY,
    can_retry,
    is_transient_http_status,
    retry_delay,
)


@pytest.mark.parametrize(
    ("attempt", "base", "rand", "seconds"),
    [
        (1, 60, 0.0, 60),  # the first retry waits the base delay
        (2, 60, 0.0, 120),
        (3, 60, 0.0, 240),
        (4, 60, 0.0, 480),
        (1, 60, 0.5, 69),  # 60 × (1 + 0.3 × 0.5)
        (3, 10, 0.999, 51.988),  # 40 × 1.2997
        (1, 1, 0.0, 1),
    ],
)
def test_the_delay_doubles_with_each_attempt_and_carries_jitter(
    attempt: int, base: float, rand: float, seconds: float
) -> None:
    assert retry_delay(attempt, base, rand) == timedelta(seconds=seconds)


def test_the_delay_is_capped_at_a_day() -> None:
    assert MAX_RETRY_DELAY.total_seconds() == 86400
    assert retry_delay(12, 3600, 0.0) == MAX_RETRY_DELAY
    assert retry_delay(10_000, 1, 0.9) == MAX_RETRY_DELAY


@given(
    attempt=st.integers(min_value=1, max_value=60),
    base=st.integers(min_value=1, max_value=3600),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_the_delay_stays_between_the_bounds(attempt: int, base: int, rand: float) -> None:
    delay = retry_delay(attempt, base, rand)
    cap = MAX_RETRY_DELAY.total_seconds()
    low = timedelta(seconds=min(base * 2 ** (attempt - 1), cap))
    high = timedelta(seconds=min(base * 2 ** (attempt - 1) * 1.3, cap))
    slack = timedelta(milliseconds=1)
    assert low - slack <= delay <= high + slack


@pytest.mark.parametrize(
    ("attempt", "base", "rand"),
    [(0, 60, 0.0), (-1, 60, 0.0), (1, 0, 0.0), (1, -5, 0.0), (1, 60, 1.0), (1, 60, -0.1)],
)
def test_nonsense_arguments_are_refused(attempt: int, base: float, rand: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        retry_delay(attempt, base, rand)


@pytest.mark.parametrize(
    ("attempt", "max_retries", "expected"),
    [(1, 0, False), (1, 1, True), (2, 1, False), (10, 10, True), (11, 10, False)],
)
def test_max_retries_counts_retries_not_attempts(
    attempt: int, max_retries: int, expected: bool
) -> None:
    assert can_retry(attempt, max_retries) is expected


@pytest.mark.parametrize("code", [500, 502, 503, 504, 599, 408, 429])
def test_server_errors_timeouts_and_rate_limits_are_transient(code: int) -> None:
    assert is_transient_http_status(code)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 405, 409, 410, 413, 422, 451, 301, 302])
def test_other_client_errors_and_redirects_are_permanent(code: int) -> None:
    assert not is_transient_http_status(code)
