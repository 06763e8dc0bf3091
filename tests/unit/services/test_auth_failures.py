"""Failed authentication counted per client address, in bounded memory (SPEC §9)."""

from __future__ import annotations

import pytest

from tickwork.services.auth_failures import AuthFailures, client_key
from tickwork.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def failures(clock: FakeClock, limit: int = 3, window: float = 60, size: int = 100) -> AuthFailures:
    return AuthFailures(clock, limit, window, size)


def test_an_address_is_refused_after_the_limit_until_its_window_ends(clock: FakeClock) -> None:
    guard = failures(clock)
    for _ in range(2):
        guard.failed("203.0.113.7")
        assert guard.retry_after("203.0.113.7") is None
    clock.advance(10)
    guard.failed("203.0.113.7")
    assert guard.retry_after("203.0.113.7") == 50  # the window began at the first failure
    clock.advance(49.5)
    assert guard.retry_after("203.0.113.7") == 1
    clock.advance(0.5)
    assert guard.retry_after("203.0.113.7") is None
    guard.failed("203.0.113.7")  # a new window
    assert guard.retry_after("203.0.113.7") is None


def test_other_addresses_are_not_affected(clock: FakeClock) -> None:
    guard = failures(clock)
    for _ in range(5):
        guard.failed("203.0.113.7")
    assert guard.retry_after("203.0.113.7") is not None
    assert guard.retry_after("203.0.113.8") is None
    assert guard.retry_after("2001:db8::1") is None


def test_failures_spread_beyond_the_window_never_block(clock: FakeClock) -> None:
    guard = failures(clock)
    for _ in range(20):
        guard.failed("203.0.113.7")
        guard.failed("203.0.113.7")
        clock.advance(61)
    assert guard.retry_after("203.0.113.7") is None


def test_an_ipv6_host_is_counted_per_64_network(clock: FakeClock) -> None:
    guard = failures(clock)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"):
        guard.failed(host)
    assert guard.retry_after("2001:db8:1:2:abcd::1") is not None
    assert guard.retry_after("2001:db8:1:3::1") is None


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::/64"),
        ("testclient", "testclient"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_the_counting_key_of_an_address(address: str | None, key: str) -> None:
    assert client_key(address) == key


def test_memory_stays_bounded_while_an_attacker_rotates_addresses(clock: FakeClock) -> None:
    guard = failures(clock, size=1000)
    for i in range(100_000):
        guard.failed(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(guard) == 1000


def test_an_active_attacker_stays_blocked_while_others_fill_the_table(clock: FakeClock) -> None:
    guard = failures(clock, size=100)
    for _ in range(3):
        guard.failed("198.51.100.1")
    for i in range(1000):
        assert guard.retry_after("198.51.100.1") is not None  # it keeps trying: seen last
        guard.failed(f"10.0.{i >> 8}.{i & 255}")
    assert guard.retry_after("198.51.100.1") is not None


def test_expired_windows_are_dropped(clock: FakeClock) -> None:
    guard = failures(clock)
    for i in range(50):
        guard.failed(f"10.0.0.{i}")
    clock.advance(121)
    guard.failed("10.0.1.1")
    assert len(guard) == 1


def test_a_limit_of_0_turns_it_off(clock: FakeClock) -> None:
    guard = failures(clock, limit=0)
    for _ in range(100):
        guard.failed("203.0.113.7")
    assert guard.retry_after("203.0.113.7") is None
    assert len(guard) == 0
