"""The seed's design (SPEC §0), reimplemented minimally: for fire precision only.

    python bench/peers/run_seed.py precision --n 1000 --spread 60

One scheduler loop: wake at each minute boundary, select the due rows
(``next_run_at <= now``), start a run for each (a task of its own, no bound — as the
seed's ``Promise.allSettled``), advance ``next_run_at`` (NULL for a one-time trigger).
A SQLite file through the standard library; the job body is the same no-op as every
other system's. Standard library only, so it runs in either venv.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:  # the module as the type checker, run from the repository, finds it
    from bench.peers import _common as c
else:
    import _common as c

TICK_SECONDS = 60.0


class Seed(c.Adapter):
    name = "seed"
    cron = False

    def __init__(self, db: c.Db, rec: c.Recorder) -> None:
        if db.kind != "sqlite":
            raise SystemExit("the seed's reimplementation runs on SQLite")
        super().__init__(db, rec)
        self.conn = sqlite3.connect(str(db.path), isolation_level=None, check_same_thread=False)
        self.loop_task: asyncio.Task[None] | None = None
        self.runs: set[asyncio.Task[None]] = set()

    async def open(self, create: bool) -> None:
        if create:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS triggers "
                "(id TEXT PRIMARY KEY, next_run_at REAL, status TEXT NOT NULL DEFAULT 'idle')"
            )
            self.conn.execute("CREATE INDEX IF NOT EXISTS due ON triggers (next_run_at)")

    async def start(self) -> None:
        self.loop_task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(TICK_SECONDS - now % TICK_SECONDS)  # the next minute boundary
            self._tick(time.time())

    def _tick(self, now: float) -> None:
        due = [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM triggers WHERE next_run_at IS NOT NULL AND next_run_at <= ?",
                (now,),
            )
        ]
        for slot in due:
            task = asyncio.create_task(self._run(slot))
            self.runs.add(task)
            task.add_done_callback(self.runs.discard)
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "UPDATE triggers SET next_run_at = NULL, status = 'dispatched' WHERE id = ?",
            [(s,) for s in due],
        )
        self.conn.execute("COMMIT")

    async def _run(self, slot: str) -> None:
        self.rec.record(slot)
        await asyncio.to_thread(
            self._write, "UPDATE triggers SET status = 'completed' WHERE id = ?", slot
        )

    def _write(self, sql: str, slot: str) -> None:
        conn = sqlite3.connect(str(self.db.path), timeout=30)
        try:
            with conn:
                conn.execute(sql, (slot,))
        finally:
            conn.close()

    async def stop(self) -> None:
        if self.loop_task is not None:
            self.loop_task.cancel()
        if self.runs:
            await asyncio.gather(*self.runs, return_exceptions=True)

    async def close(self) -> None:
        self.conn.close()

    async def add_once(self, slots: list[tuple[str, float]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO triggers (id, next_run_at) VALUES (?, ?)", [(s, d) for s, d in slots]
        )
        self.conn.execute("COMMIT")

    async def completed(self, prefix: str, n: int) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM triggers WHERE status = 'completed' AND id LIKE ?",
            (prefix + "%",),
        ).fetchone()
        return int(row[0])


if __name__ == "__main__":
    sys.exit(c.main_for(Seed))
