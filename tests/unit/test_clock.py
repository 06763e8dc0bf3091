from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tickwork.testing import FakeClock

START = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


def test_it_rejects_naive_instants() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 1, 1))  # noqa: DTZ001


def test_it_never_moves_backwards() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(START - timedelta(seconds=1))


async def _sleep_and_report(
    clock: FakeClock, deadline: datetime, wake: asyncio.Event | None
) -> bool:
    return await clock.sleep_until(deadline, wake)


def test_sleepers_wake_when_their_deadline_is_reached() -> None:
    async def scenario() -> None:
        clock = FakeClock(START)
        task = asyncio.create_task(_sleep_and_report(clock, START + timedelta(seconds=30), None))
        await asyncio.sleep(0)
        assert clock.next_deadline() == START + timedelta(seconds=30)
        clock.advance(29)
        await asyncio.sleep(0)
        assert not task.done()
        clock.advance(1)
        assert await asyncio.wait_for(task, timeout=1) is False

    asyncio.run(scenario())


def test_an_event_wakes_a_sleeper_early() -> None:
    async def scenario() -> None:
        clock = FakeClock(START)
        wake = asyncio.Event()
        task = asyncio.create_task(_sleep_and_report(clock, START + timedelta(hours=1), wake))
        await asyncio.sleep(0)
        wake.set()
        assert await asyncio.wait_for(task, timeout=1) is True
        assert clock.now() == START

    asyncio.run(scenario())
