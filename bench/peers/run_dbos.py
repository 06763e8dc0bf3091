"""DBOS Transact 3.x, in the peers' venv.

    bench/.peers-venv/bin/python bench/peers/run_dbos.py burst --db pg --n 10000

DBOS launched in this process on its system database (PostgreSQL, or a SQLite file).
One-time jobs are durable workflows enqueued with a workflow id per slot (``SetWorkflowID``)
on a queue with ``worker_concurrency = BENCH_CONCURRENCY`` and a start delay
(``SetEnqueueOptions(delay_seconds=…)``, the DELAYED state): DBOS's way to start a
workflow at a given instant. Cron schedules are ``DBOS.create_schedule`` (6-field cron)
enqueueing onto the same queue. Every setting is DBOS's default unless named here.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:  # the module as the type checker, run from the repository, finds it
    from bench.peers import _common as c
else:
    import _common as c
from dbos import DBOS, Queue, SetEnqueueOptions, SetWorkflowID

REC: c.Recorder | None = None
CHUNK = 50


@DBOS.workflow()
async def noop(slot: str) -> None:
    assert REC is not None
    await REC.body(slot)


@DBOS.workflow()
async def noop_cron(scheduled: datetime, context: Any) -> None:
    assert REC is not None
    REC.record(str(context), scheduled.timestamp())


QUEUE_NAME = "bench"


class Dbos(c.Adapter):
    name = "dbos"

    def __init__(self, db: c.Db, rec: c.Recorder) -> None:
        super().__init__(db, rec)
        global REC
        REC = rec
        self.counter = c.Counter_(db)
        self.table = "dbos.workflow_status" if db.kind == "pg" else "workflow_status"
        self.launched = False
        self.queue: Queue | None = None

    async def open(self, create: bool) -> None:
        if self.launched:
            return
        url = self.db.url if self.db.kind == "pg" else f"sqlite:///{self.db.path}"
        DBOS(
            config={
                "name": "bench",
                "system_database_url": url,
                "log_level": "WARNING",
                "run_admin_server": False,
            }
        )
        logging.getLogger("dbos").setLevel(logging.WARNING)
        await asyncio.to_thread(DBOS.launch)
        self.queue = await DBOS.register_queue_async(QUEUE_NAME, worker_concurrency=c.CONCURRENCY)
        self.launched = True

    async def start(self) -> None:
        # DBOS.launch() starts the queue runner, the delayed-workflow promotion and the
        # schedules as well: a client is also a worker.
        await self.open(create=False)

    async def stop(self) -> None:
        pass

    async def close(self) -> None:
        if self.launched:
            await asyncio.to_thread(DBOS.destroy, destroy_registry=False)
            self.launched = False
        self.counter.close()

    async def _enqueue(self, slot: str, due: float) -> None:
        with SetWorkflowID(slot), SetEnqueueOptions(delay_seconds=max(0.0, due - time.time())):
            assert self.queue is not None
            await self.queue.enqueue_async(noop, slot)

    async def add_once(self, slots: list[tuple[str, float]]) -> None:
        for i in range(0, len(slots), CHUNK):
            await asyncio.gather(*(self._enqueue(s, d) for s, d in slots[i : i + CHUNK]))

    async def add_cron(self, n: int, start: float) -> None:
        async def one(i: int) -> None:
            await DBOS.create_schedule_async(
                schedule_name=f"c{i}",
                workflow_fn=noop_cron,
                schedule=f"{c.sustained_second(i)} * * * * *",
                context=f"c{i}",
                queue_name=QUEUE_NAME,
            )

        for i in range(0, n, CHUNK):
            await asyncio.gather(*(one(k) for k in range(i, min(n, i + CHUNK))))

    async def completed(self, prefix: str, n: int) -> int:
        sql = (
            f"SELECT count(*) FROM {self.table} "
            f"WHERE status = 'SUCCESS' AND workflow_uuid LIKE '{prefix}%'"
        )
        return await asyncio.to_thread(self.counter.count, sql)


if __name__ == "__main__":
    sys.exit(c.main_for(Dbos))
