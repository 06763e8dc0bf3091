"""Section 4, the cost of an idle wake-up over a million stored triggers."""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.engine import serve_rss
from bench.pg_engine.common import (
    DEFAULT_BATCH,
    _libpq,
    admin_exec,
    open_ctx,
    pct,
    prepare_schema,
    seed_triggers,
    sql_scalar,
    throwaway_db,
)
from bench.raw_dispatch import RawDispatcher
from tickwork.services import dispatch, leadership

# -- 4. idle wake-up ---------------------------------------------------------------------


def idle_run(n: int, wakes: int, workdir: Path, with_empty_rss: bool) -> dict[str, float]:
    name = f"tw_bench_idle_{os.getpid()}"
    with throwaway_db(name) as url:
        prepare_schema(url)
        out: dict[str, float] = {"n": n}
        if with_empty_rss:
            out["rss_empty_mb"] = serve_rss(url, workdir)["serve_rss_mb"]
        t0 = time.perf_counter()
        far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        seed_triggers(url, n, start=far, step=timedelta(seconds=1))
        out["seed_s"] = time.perf_counter() - t0
        admin_exec("CHECKPOINT")
        ctx = open_ctx(url)
        try:
            fence = leadership.acquire(ctx, "run_bench_idle", force=True)
            assert fence is not None
            tw: list[float] = []
            for i in range(wakes + 5):
                s = time.perf_counter()
                result = dispatch.dispatch_batch(ctx, datetime.now(UTC), DEFAULT_BATCH, fence)
                earliest = dispatch.earliest_due(ctx)
                if i >= 5:  # the first few warm the pool and the statement cache
                    tw.append(time.perf_counter() - s)
                assert result.triggers == 0
                assert earliest is not None
        finally:
            ctx.db.dispose()
        raw = RawDispatcher(_libpq(url), fence.run_id, fence.generation)
        try:
            rw: list[float] = []
            for i in range(wakes + 5):
                s = time.perf_counter()
                raw.idle_wake(datetime.now(UTC), DEFAULT_BATCH)
                if i >= 5:
                    rw.append(time.perf_counter() - s)
        finally:
            raw.close()
        rss = serve_rss(url, workdir)
        out |= {
            "tw_p50_ms": statistics.median(tw) * 1000,
            "tw_p99_ms": pct(tw, 99) * 1000,
            "raw_p50_ms": statistics.median(rw) * 1000,
            "raw_p99_ms": pct(rw, 99) * 1000,
            "rss_mb": rss["serve_rss_mb"],
            "idle_cpu": rss["idle_cpu_percent"],
            "size_mb": float(
                sql_scalar(url, "SELECT pg_total_relation_size('scheduled_triggers')") / 2**20
            ),
        }
    return out


def idle_report(r: dict[str, float], wakes: int) -> list[str]:
    lines = [
        f"### 4. Idle wake-up over {r['n']:,.0f} stored triggers",
        "",
        f"{r['n']:,.0f} triggers whose next run is a day or more away "
        f"(`scheduled_triggers` {r['size_mb']:.0f} MB with indexes, seeded in "
        f"{r['seed_s']:.1f} s, `ANALYZE`d). One wake-up = `dispatch_batch` (fenced, finds "
        f"nothing) + `earliest_due`, {wakes} times; the raw line does the same statements "
        "with psycopg. Then a real `tickwork serve` (all roles) idling over the database "
        "for 6 s (target < 5 ms per wake-up, RSS < 150 MB).",
        "",
        "| | p50 | p99 |",
        "|---|---:|---:|",
        f"| tickwork wake-up | {r['tw_p50_ms']:.2f} ms | {r['tw_p99_ms']:.2f} ms |",
        f"| raw psycopg wake-up | {r['raw_p50_ms']:.2f} ms | {r['raw_p99_ms']:.2f} ms |",
        "",
        "| `tickwork serve` idling | RSS | CPU |",
        "|---|---:|---:|",
    ]
    if "rss_empty_mb" in r:
        lines.append(f"| over an empty database | {r['rss_empty_mb']:.0f} MB | — |")
    lines.append(f"| over {r['n']:,.0f} triggers | {r['rss_mb']:.0f} MB | {r['idle_cpu']:.1f} % |")
    lines.append("")
    return lines
