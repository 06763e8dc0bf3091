"""procrastinate 3.x on PostgreSQL, in the peers' venv.

    bench/.peers-venv/bin/python bench/peers/run_procrastinate.py burst --n 10000

One worker (``concurrency = BENCH_CONCURRENCY``; every other setting procrastinate's
default, e.g. LISTEN/NOTIFY on and a 5 s polling interval for jobs scheduled in the
future) in this process. One-time jobs are deferred with ``schedule_at``, in batches of
jobs that share their due time (``batch_defer_async``); cron schedules are periodic tasks
(``periodic_registry.register_task`` with a ``periodic_id`` per schedule and a 6-field
cron whose last field is the seconds), deferred by the worker's periodic deferrer.
Jobs that stalled in a killed worker are retried by procrastinate's documented recipe,
run every 5 s next to the worker: ``list_stalled_jobs`` → ``retry_job``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:  # the module as the type checker, run from the repository, finds it
    from bench.peers import _common as c
else:
    import _common as c
from procrastinate import App, PsycopgConnector

REC: c.Recorder | None = None
APP: App | None = None
BATCH = 1000


def make_app(url: str) -> App:
    app = App(connector=PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop(slot: str) -> None:
        assert REC is not None
        await REC.body(slot)

    @app.task(name="noop_cron")
    async def noop_cron(slot: str, timestamp: int) -> None:
        assert REC is not None
        REC.record(slot, float(timestamp))

    return app


class Procrastinate(c.Adapter):
    name = "procrastinate"

    def __init__(self, db: c.Db, rec: c.Recorder) -> None:
        if db.kind != "pg":
            raise SystemExit("procrastinate runs on PostgreSQL only")
        super().__init__(db, rec)
        global REC
        REC = rec
        self.app = make_app(db.url)
        self.counter = c.Counter_(db)
        self.tasks: list[asyncio.Task[Any]] = []

    async def open(self, create: bool) -> None:
        await self.app.open_async()
        if create:
            await self.app.schema_manager.apply_schema_async()

    async def start(self) -> None:
        worker = self.app.run_worker_async(
            concurrency=c.CONCURRENCY, install_signal_handlers=False, wait=True
        )
        self.tasks = [asyncio.create_task(worker), asyncio.create_task(self._retry_stalled())]

    async def _retry_stalled(self) -> None:
        manager = self.app.job_manager
        while True:
            await asyncio.sleep(5)
            with contextlib.suppress(Exception):
                for job in await manager.get_stalled_jobs():
                    await manager.retry_job(job)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []

    async def close(self) -> None:
        await self.app.close_async()
        self.counter.close()

    async def add_once(self, slots: list[tuple[str, float]]) -> None:
        task = self.app.tasks["noop"]
        by_due: dict[float, list[str]] = defaultdict(list)
        for slot, due in slots:
            by_due[due].append(slot)
        for due, names in by_due.items():
            deferrer = task.configure(schedule_at=datetime.fromtimestamp(due, UTC))
            for i in range(0, len(names), BATCH):
                await deferrer.batch_defer_async(*({"slot": s} for s in names[i : i + BATCH]))

    async def add_cron(self, n: int, start: float) -> None:
        task = self.app.tasks["noop_cron"]
        for i in range(n):
            self.app.periodic_registry.register_task(
                task=task,
                cron=f"* * * * * {c.sustained_second(i)}",
                periodic_id=f"c{i}",
                configure_kwargs={"task_kwargs": {"slot": f"c{i}"}},
            )
        # The periodic deferrer reads the registry when the worker starts: restart it.
        await self.stop()
        await self.start()

    async def completed(self, prefix: str, n: int) -> int:
        sql = (
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' "
            f"AND args->>'slot' LIKE '{prefix}%'"
        )
        return await asyncio.to_thread(self.counter.count, sql)


if __name__ == "__main__":
    sys.exit(c.main_for(Procrastinate))
