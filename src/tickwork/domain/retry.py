"""Retry policy (SPEC §5): how long to wait before trying again, and what is worth it.

Pure functions: the random draw is a parameter, so a test (or a replay) chooses it.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "JITTER_FRACTION",
    "MAX_RETRY_DELAY",
    "can_retry",
    "is_transient_http_status",
    "retry_delay",
]

# The delay grows by up to this fraction of itself so that triggers failing together
# (one target down) do not all retry in the same instant.
JITTER_FRACTION = 0.3
# No retry waits longer than this, however large the attempt number or base delay.
MAX_RETRY_DELAY = timedelta(hours=24)


def retry_delay(attempt: int, base_seconds: float, rand: float) -> timedelta:
    """How long to wait after attempt number ``attempt`` (1-based) failed.

    ``base_seconds × 2^(attempt−1) × (1 + 0.3 × rand)``, capped at
    :data:`MAX_RETRY_DELAY`; ``rand`` is a uniform draw in [0, 1). The first retry
    (after attempt 1) therefore waits the base delay, stretched by the jitter factor.
    The result is rounded to whole milliseconds.
    """
    if isinstance(attempt, bool) or attempt < 1:
        raise ValueError("attempt must be 1 or more")
    if base_seconds <= 0:
        raise ValueError("base_seconds must be positive")
    if not 0.0 <= rand < 1.0:
        raise ValueError("rand must be in [0, 1)")
    cap = MAX_RETRY_DELAY.total_seconds()
    # Stopping the exponent at 40 keeps the float finite for absurd attempt numbers;
    # with any base of a millisecond or more, 2^40 times it is far past the cap anyway.
    growth = 2.0 ** min(attempt - 1, 40)
    seconds = min(base_seconds * growth * (1.0 + JITTER_FRACTION * rand), cap)
    return timedelta(milliseconds=round(seconds * 1000))


def can_retry(attempt: int, max_retries: int) -> bool:
    """Whether another attempt follows a transient failure of attempt ``attempt``.

    ``max_retries`` counts retries, not attempts: 1 (the default) allows two attempts.
    """
    return attempt <= max_retries


def is_transient_http_status(code: int) -> bool:
    """Whether a failed HTTP response is worth retrying.

    Server errors (5xx), 408 Request Timeout and 429 Too Many Requests are transient.
    Any other status that is not a success (other 4xx, and 3xx since redirects are not
    followed) is permanent: sending the same request again gets the same answer.
    """
    return code in (408, 429) or 500 <= code <= 599
