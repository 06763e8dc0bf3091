from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tickwork.domain.ids import id_timestamp, new_id, schedule_key

T0 = datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC)


def test_an_id_is_a_prefix_and_26_base32_characters() -> None:
    value = new_id("trg", T0)
    assert re.fullmatch(r"trg_[0-9a-hjkmnp-tv-z]{26}", value)


def test_a_trailing_underscore_on_the_prefix_is_tolerated() -> None:
    assert new_id("inv_", T0).startswith("inv_")
    assert not new_id("inv_", T0).startswith("inv__")


@pytest.mark.parametrize("prefix", ["", "TRG", "1ab", "a-b", "_", "waytoolongforanidprefix"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_id(prefix, T0)


def test_ids_are_unique() -> None:
    assert len({new_id("trg", T0) for _ in range(2000)}) == 2000


def test_ids_sort_by_time() -> None:
    instants = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 2, 999, 60_000, 86_400_000)]
    ids = [new_id("inv", t) for t in instants]
    assert sorted(ids) == ids
    # Even with the largest random part against the smallest.
    latest_first = new_id("inv", T0, b"\xff" * 10)
    assert latest_first < new_id("inv", T0 + timedelta(milliseconds=1), bytes(10))


def test_an_id_carries_its_instant_to_the_millisecond() -> None:
    when = datetime(2026, 3, 8, 7, 0, 0, 123456, tzinfo=UTC)
    assert id_timestamp(new_id("trg", when)) == when.replace(microsecond=123000)
    berlin = timezone(timedelta(hours=1))
    assert id_timestamp(new_id("trg", T0.astimezone(berlin))) == T0


def test_the_random_part_can_be_fixed() -> None:
    assert new_id("trg", T0, bytes(10)) == new_id("trg", T0, bytes(10))
    assert new_id("trg", T0, bytes(10)) != new_id("trg", T0, b"\x00" * 9 + b"\x01")


def test_an_id_needs_an_aware_instant_in_range() -> None:
    with pytest.raises(ValueError, match="aware"):
        new_id("trg", datetime(2026, 3, 8))  # noqa: DTZ001
    with pytest.raises(ValueError, match="range"):
        new_id("trg", datetime(1969, 12, 31, tzinfo=UTC))
    with pytest.raises(ValueError, match="bytes"):
        new_id("trg", T0, b"short")


@pytest.mark.parametrize("value", ["trg", "trg_", "trg_" + "!" * 26, "trg_" + "0" * 25])
def test_id_timestamp_refuses_what_is_not_an_id(value: str) -> None:
    with pytest.raises(ValueError, match="not a tickwork id"):
        id_timestamp(value)


def test_the_schedule_key_is_canonical() -> None:
    assert schedule_key("trg_1", T0) == "sched:trg_1:2026-03-08T07:00:00Z"


def test_the_schedule_key_is_the_same_for_any_offset_of_the_same_instant() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert schedule_key("trg_1", T0.astimezone(new_york)) == schedule_key("trg_1", T0)


def test_the_schedule_key_keeps_a_fraction_of_a_second() -> None:
    key = schedule_key("trg_1", T0.replace(microsecond=250000))
    assert key == "sched:trg_1:2026-03-08T07:00:00.250000Z"


def test_the_schedule_key_needs_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        schedule_key("trg_1", datetime(2026, 3, 8, 7))  # noqa: DTZ001


def test_ids_of_one_millisecond_sort_in_the_order_they_were_made() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    made = [new_id("inv", now) for _ in range(10_000)]
    assert sorted(made) == made
    assert len(set(made)) == len(made)
    assert {id_timestamp(i) for i in made} == {now}


def test_the_next_millisecond_starts_afresh_and_still_sorts_after() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    first = new_id("trg", now)
    later = new_id("trg", now + timedelta(milliseconds=1))
    assert first < later
    # A clock set back (a test's fake clock) gives ids of that earlier instant.
    earlier = new_id("trg", now - timedelta(seconds=1))
    assert earlier < first
    assert id_timestamp(earlier) == now - timedelta(seconds=1)


def test_ids_made_by_many_threads_at_once_are_unique() -> None:
    import threading

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    made: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        ids = [new_id("inv", now) for _ in range(2000)]
        with lock:
            made.extend(ids)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8000
