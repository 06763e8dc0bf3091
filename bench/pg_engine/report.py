"""The section of docs/benchmarks.md, and the command line."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.pg_engine.common import DEFAULT_BATCH, PG_BASE, SECTIONS, log, sql_scalar
from bench.pg_engine.dispatching import dispatch_report, dispatch_section
from bench.pg_engine.failover import failover_report, failover_run
from bench.pg_engine.idle import idle_report, idle_run
from bench.pg_engine.workers import workers_report, workers_run

# -- report ------------------------------------------------------------------------------


def run(quick: bool, only: tuple[str, ...] = SECTIONS) -> str:
    started = time.monotonic()
    load = os.getloadavg()
    n_dispatch = 5_000 if quick else 100_000
    rounds = {DEFAULT_BATCH: 1} if quick else {DEFAULT_BATCH: 2, 1000: 1, 2000: 1}
    n_workers = 2_000 if quick else 20_000
    concurrencies = (10, 50)
    n_idle = 10_000 if quick else 1_000_000
    wakes = 50 if quick else 200
    server = sql_scalar(PG_BASE, "SHOW server_version")
    autovacuum = sql_scalar(PG_BASE, "SHOW autovacuum")
    lines = [
        "## tickwork on PostgreSQL (dispatch, workers, failover, idle)",
        "",
        f"PostgreSQL {server} on the same machine (autovacuum {autovacuum}, synchronous "
        f"commit on), `bench/pg_engine/`. Load average when the run began: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores — the "
        "machine is shared, so absolute figures are noisy; the ratios of runs that "
        "alternate are the robust part.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="tickwork-pgbench-") as tmp:
        workdir = Path(tmp)
        if "dispatch" in only:
            runs = dispatch_section(n_dispatch, rounds)
            lines += dispatch_report(runs, n_dispatch, rounds)
        if "workers" in only:
            results = []
            for conc in concurrencies:
                log(f"workers: {n_workers:,} invocations, concurrency {conc}")
                results.append(workers_run(n_workers, conc, workdir))
                log(f"workers c={conc}: {results[-1]['rate']:,.0f}/s")
            lines += workers_report(results)
        if "failover" in only:
            fails, restarts = [], []
            plan = ((10.0, 1, 1),) if quick else ((10.0, 5, 5), (3.0, 5, 0))
            for lease, reps, handovers in plan:
                log(f"failover: lease {lease:g} s, {reps} kill(s), {handovers} hand-over(s)")
                f, r = failover_run(lease, reps, handovers, workdir)
                fails += f
                restarts += r
            lines += failover_report(fails, restarts)
        if "idle" in only:
            log(f"idle: {n_idle:,} triggers")
            lines += idle_report(idle_run(n_idle, wakes, workdir, not quick), wakes)
    lines += [f"(This section took {time.monotonic() - started:.0f} s.)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_engine")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    only = tuple(s for s in args.only.split(",") if s)
    print(run(args.quick, only))
