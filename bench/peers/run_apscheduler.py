"""APScheduler 4 (pre-release) with its SQLAlchemy data store, in the peers' venv.

    bench/.peers-venv/bin/python bench/peers/run_apscheduler.py burst --db pg --n 10000

One ``AsyncScheduler`` (role: both — it schedules and runs jobs) in this process, on
PostgreSQL through asyncpg or on SQLite through aiosqlite; the local event broker (one
process). Jobs: a schedule per slot (``DateTrigger``, schedule id = slot), or a
``CronTrigger(second=S)`` per schedule. The task allows any number of concurrent jobs
(APScheduler's default is 1 per task) and the scheduler runs at most
``BENCH_CONCURRENCY`` jobs at once, like every other system.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:  # the module as the type checker, run from the repository, finds it
    from bench.peers import _common as c
else:
    import _common as c
from apscheduler import AsyncScheduler, ConflictPolicy, current_job
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.ext.asyncio import create_async_engine

REC: c.Recorder | None = None
CHUNK = 50  # registrations in flight at once


async def noop(slot: str) -> None:
    assert REC is not None
    await REC.body(slot)


async def noop_cron(slot: str) -> None:
    assert REC is not None
    REC.record(slot, current_job.get().scheduled_fire_time.timestamp())


class APScheduler(c.Adapter):
    name = "apscheduler"

    def __init__(self, db: c.Db, rec: c.Recorder) -> None:
        super().__init__(db, rec)
        global REC
        REC = rec
        if db.kind == "pg":
            url = db.url.replace("postgresql://", "postgresql+asyncpg://")
            self.engine = create_async_engine(url, pool_size=10, max_overflow=10)
        else:
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{db.path}")
        self.sched: AsyncScheduler | None = None
        self.counter = c.Counter_(db)

    async def open(self, create: bool) -> None:
        store = SQLAlchemyDataStore(self.engine)
        self.sched = AsyncScheduler(store, max_concurrent_jobs=c.CONCURRENCY, cleanup_interval=None)
        await self.sched.__aenter__()
        for fn in (noop, noop_cron):
            await self.sched.configure_task(fn, max_running_jobs=None, misfire_grace_time=None)

    async def start(self) -> None:
        assert self.sched is not None
        await self.sched.start_in_background()

    async def stop(self) -> None:
        if self.sched is not None:
            await self.sched.stop()
            await self.sched.wait_until_stopped()

    async def close(self) -> None:
        if self.sched is not None:
            await self.sched.__aexit__(None, None, None)
            self.sched = None
        await self.engine.dispose()
        self.counter.close()

    async def _gather(self, calls: list[Any]) -> None:
        for i in range(0, len(calls), CHUNK):
            await asyncio.gather(*(call() for call in calls[i : i + CHUNK]))

    async def add_once(self, slots: list[tuple[str, float]]) -> None:
        sched = self.sched
        assert sched is not None

        def call(slot: str, due: float) -> Any:
            return lambda: sched.add_schedule(
                noop,
                DateTrigger(datetime.fromtimestamp(due, UTC)),
                id=slot,
                args=[slot],
                conflict_policy=ConflictPolicy.exception,
            )

        await self._gather([call(s, d) for s, d in slots])

    async def add_cron(self, n: int, start: float) -> None:
        sched = self.sched
        assert sched is not None
        first = datetime.fromtimestamp(start, UTC)

        def call(i: int) -> Any:
            return lambda: sched.add_schedule(
                noop_cron,
                CronTrigger(second=c.sustained_second(i), start_time=first, timezone="UTC"),
                id=f"c{i}",
                args=[f"c{i}"],
            )

        await self._gather([call(i) for i in range(n)])

    async def completed(self, prefix: str, n: int) -> int:
        # A fired DateTrigger schedule keeps its row with no next fire time (until a
        # clean-up); its job row is deleted when the job is released (no result kept).
        # Done = the schedule has fired and its job is gone.
        sql = (
            "SELECT (SELECT count(*) FROM schedules WHERE id LIKE "
            f"'{prefix}%' AND next_fire_time IS NOT NULL) + "
            f"(SELECT count(*) FROM jobs WHERE schedule_id LIKE '{prefix}%')"
        )
        left = await asyncio.to_thread(self.counter.count, sql)
        return n - left


if __name__ == "__main__":
    sys.exit(c.main_for(APScheduler))
