"""What every workload script shares, in tickwork's venv and in the peers' venv alike.

Standard library only (psycopg is imported lazily, for PostgreSQL), so the same file
serves the peer scripts run as ``bench/.peers-venv/bin/python bench/peers/run_X.py`` and
tickwork's own script run as ``.venv/bin/python -m bench.peers.run_tickwork``.

The job body of every system is the same: :meth:`Recorder.body` appends one line
``slot start_time [nominal_time]`` to a file with a single ``write`` on an ``O_APPEND``
descriptor. Start times, lost runs and duplicated runs are all read from that file — the
bodies count, not the systems' own bookkeeping — and the line is on disk even when the
process is killed a moment later. It is a no-op unless ``BENCH_BODY_SECONDS`` is set (the
restart workload): then the body lasts that long (0: no time) and appends ``slot
end_time`` to a second file (``….end``) as it returns, so a kill shows which bodies were
still running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Every system runs its job bodies with the same bound on concurrency.
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "50"))
PG_BASE = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class Recorder:
    """The body of every job: one appended line per run."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        held = os.environ.get("BENCH_BODY_SECONDS")
        self.hold = float(held or 0)
        self.end_fd = (
            os.open(self.path + ".end", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if held
            else None
        )

    def record(self, slot: str, nominal: float | None = None) -> None:
        now = time.time()
        line = f"{slot} {now:.6f}" if nominal is None else f"{slot} {now:.6f} {nominal:.6f}"
        os.write(self.fd, (line + "\n").encode())

    async def body(self, slot: str, nominal: float | None = None) -> None:
        """The job body: record the start; with a hold, last that long and record the end."""
        self.record(slot, nominal)
        if self.end_fd is not None:
            import asyncio

            if self.hold > 0:
                await asyncio.sleep(self.hold)
            os.write(self.end_fd, f"{slot} {time.time():.6f}\n".encode())

    def close(self) -> None:
        os.close(self.fd)
        if self.end_fd is not None:
            os.close(self.end_fd)


@dataclass
class Record:
    slot: str
    started: float
    nominal: float | None


def read_records(path: str | Path) -> list[Record]:
    out: list[Record] = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue  # a line cut by a kill
        out.append(Record(parts[0], float(parts[1]), float(parts[2]) if len(parts) > 2 else None))
    return out


def read_ends(path: str | Path) -> set[str]:
    """The slots whose body returned (the ``….end`` file of a held body)."""
    p = Path(str(path) + ".end")
    if not p.exists():
        return set()
    return {
        parts[0]
        for parts in (line.split() for line in p.read_text().splitlines())
        if len(parts) == 2
    }


def count_lines(path: str | Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def lag_summary(lags_s: list[float]) -> dict[str, Any]:
    """p50/p99/max in ms, and 101 quantiles (0..100) for the charts."""
    ms = [x * 1000 for x in lags_s]
    if not ms:
        return {"count": 0}
    return {
        "count": len(ms),
        "p50_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "min_ms": min(ms),
        "quantiles_ms": [percentile(ms, q) for q in range(101)],
    }


def lost_and_duplicated(path: str | Path, expected: list[str]) -> dict[str, int]:
    seen = Counter(r.slot for r in read_records(path))
    wanted = set(expected)
    return {
        "expected": len(wanted),
        "ran": sum(1 for s in wanted if seen[s] > 0),
        "lost": sum(1 for s in wanted if seen[s] == 0),
        "duplicated": sum(n - 1 for s, n in seen.items() if s in wanted and n > 1),
        "unexpected": sum(n for s, n in seen.items() if s not in wanted),
    }


# -- processes -----------------------------------------------------------------------------


def cpu_seconds(pid: int | str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def threads(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# -- databases -----------------------------------------------------------------------------


@dataclass
class Db:
    kind: str  # "pg" | "sqlite"
    url: str  # plain URL: postgresql://… or sqlite:///path
    path: Path | None  # the SQLite file


def _pg_admin_url() -> str:
    return PG_BASE


def _pg_exec(sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def pg_url_for(name: str) -> str:
    base, _, _ = PG_BASE.rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def fresh_db(kind: str, name: str, workdir: Path, keep: bool = False) -> Iterator[Db]:
    """A new, empty database: a PostgreSQL database of its own, or a new SQLite file."""
    if kind == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        yield Db("sqlite", f"sqlite:///{path}", path)
        return
    db_name = f"bench_{name}_{os.getpid()}".lower()
    _pg_exec(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    _pg_exec(f'CREATE DATABASE "{db_name}"')
    try:
        yield Db("pg", pg_url_for(db_name), None)
    finally:
        if not keep:
            with contextlib.suppress(Exception):
                _pg_exec(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def existing_db(kind: str, name: str, workdir: Path) -> Db:
    """The database a previous phase created (restart workload)."""
    if kind == "sqlite":
        path = workdir / f"{name}.db"
        return Db("sqlite", f"sqlite:///{path}", path)
    return Db("pg", pg_url_for(name), None)


def create_pg_db(name: str) -> None:
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_exec(f'CREATE DATABASE "{name}"')


def drop_pg_db(name: str) -> None:
    with contextlib.suppress(Exception):
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql_count(db: Db, sql: str) -> int:
    """One ``SELECT count(*)`` on the system's own database, from a short connection."""
    if db.kind == "sqlite":
        import sqlite3

        lite = sqlite3.connect(str(db.path), timeout=30)
        try:
            return int(lite.execute(sql).fetchone()[0])
        finally:
            lite.close()
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


class Counter_:
    """A reusable PostgreSQL/SQLite connection for frequent completion polls."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.conn: Any = None

    def count(self, sql: str) -> int:
        if self.conn is None:
            if self.db.kind == "sqlite":
                import sqlite3

                self.conn = sqlite3.connect(
                    str(self.db.path), timeout=30, isolation_level=None, check_same_thread=False
                )
            else:
                import psycopg

                self.conn = psycopg.connect(self.db.url, autocommit=True)
        return int(self.conn.execute(sql).fetchone()[0])

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- plans ---------------------------------------------------------------------------------


def precision_plan(n: int, spread: float, start: float) -> list[tuple[str, float]]:
    """n one-time jobs, due evenly over ``spread`` seconds from ``start`` (epoch s)."""
    return [(f"p{i}", start + spread * i / n) for i in range(n)]


def sustained_second(i: int) -> int:
    """Schedule i fires at second i % 60 of every minute: the load spread over seconds."""
    return i % 60


def expected_sustained(n: int, window: tuple[float, float]) -> int:
    """How many (schedule, minute) firings fall inside [start, end)."""
    start, end = window
    total = 0
    for i in range(n):
        s = sustained_second(i)
        t = math.floor(start / 60) * 60 + s
        while t < start:
            t += 60
        while t < end:
            total += 1
            t += 60
    return total


def sustained_report(path: str | Path, n: int, window: tuple[float, float]) -> dict[str, Any]:
    start, end = window
    recs = [r for r in read_records(path) if r.nominal is not None and start <= r.nominal < end]
    lags = [r.started - r.nominal for r in recs if r.nominal is not None]
    ran_in_window = sum(1 for r in recs if r.started < end)
    seconds = end - start
    expected = expected_sustained(n, window)
    keys = Counter((r.slot, round(r.nominal or 0)) for r in recs)
    return {
        "schedules": n,
        "window_s": seconds,
        "expected": expected,
        "ran": len(keys),
        "duplicated": sum(c - 1 for c in keys.values() if c > 1),
        "missing": max(0, expected - len(keys)),
        "completed_per_s": ran_in_window / seconds,
        "offered_per_s": expected / seconds,
        "lag": lag_summary(lags),
    }


# -- the command line every script shares ----------------------------------------------------


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument(
        "workload", choices=("precision", "burst", "sustained", "scale", "restart-serve")
    )
    p.add_argument("--db", choices=("pg", "sqlite"), default="pg")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--spread", type=float, default=60.0, help="precision: seconds")
    p.add_argument("--lead", type=float, default=5.0, help="seconds before the first due time")
    p.add_argument("--window", type=float, default=120.0, help="sustained: seconds")
    p.add_argument("--idle", type=float, default=60.0, help="scale: idle seconds measured")
    p.add_argument("--warmup", type=int, default=50, help="jobs run before measuring")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--name", default="", help="restart: the database name to share")
    p.add_argument("--register", action="store_true", help="restart: register the jobs")
    p.add_argument("--due", type=float, default=0.0, help="restart: the burst instant")
    return p


def workdir(args: argparse.Namespace) -> Path:
    if args.workdir is None:
        args.workdir = Path(tempfile.mkdtemp(prefix="tickwork-peers-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    return Path(args.workdir)


def emit(result: dict[str, Any]) -> None:
    """The result: one JSON document on the last line of stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def burst_due(registered_per_s: float, n: int, margin: float = 3.0) -> float:
    """The burst instant: far enough ahead for ``n`` registrations at the measured rate."""
    return time.time() + margin + 1.3 * n / max(registered_per_s, 1.0)


# -- the workloads, for any system behind an adapter -----------------------------------------


class Adapter:
    """One peer system, run in this process. Subclasses fill these in."""

    name = "?"
    cron = True  # supports many dynamic cron schedules (sustained)

    def __init__(self, db: Db, rec: Recorder) -> None:
        self.db = db
        self.rec = rec

    async def open(self, create: bool) -> None:
        """Connect as a client (``create``: set the schema up)."""

    async def start(self) -> None:
        """Start scheduling and running jobs in the background."""

    async def stop(self) -> None: ...

    async def close(self) -> None: ...

    async def add_once(self, slots: list[tuple[str, float]]) -> None:
        raise NotImplementedError

    async def add_cron(self, n: int, start: float) -> None:
        raise NotImplementedError

    async def completed(self, prefix: str, n: int) -> int:
        """How many of the ``n`` jobs whose slot starts with ``prefix`` are done."""
        raise NotImplementedError


async def _wait_done(a: Adapter, prefix: str, n: int, limit_s: float) -> float | None:
    import asyncio

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await a.completed(prefix, n) >= n:
            return time.time()
        await asyncio.sleep(0.05)
    return None


async def _register(a: Adapter, slots: list[tuple[str, float]]) -> float:
    t0 = time.perf_counter()
    await a.add_once(slots)
    return time.perf_counter() - t0


async def _warm_up(a: Adapter, k: int) -> float:
    """Run ``k`` jobs due now; returns the registrations per second it saw."""
    if k <= 0:
        return 1000.0
    now = time.time()
    seconds = await _register(a, [(f"w{i}", now) for i in range(k)])
    if await _wait_done(a, "w", k, 120) is None:
        raise RuntimeError("warm-up did not complete")
    return k / max(seconds, 1e-6)


async def run_precision(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await a.open(create=True)
    await a.start()
    try:
        await _warm_up(a, args.warmup)
        plan = precision_plan(args.n, args.spread, time.time() + args.lead)
        register_s = await _register(a, plan)
        overran = max(0.0, time.time() - plan[0][1])
        done = await _wait_done(a, "p", args.n, args.lead + args.spread + args.timeout)
    finally:
        await a.stop()
        await a.close()
    due = dict(plan)
    recs = [r for r in read_records(a.rec.path) if r.slot in due]
    out: dict[str, Any] = {
        "register_s": register_s,
        "registration_overran_s": overran,
        "lag": lag_summary([r.started - due[r.slot] for r in recs]),
        "bodies": len(recs),
    }
    if done is None:
        out["incomplete"] = True
    return out


async def run_burst(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await a.open(create=True)
    await a.start()
    try:
        rate = await _warm_up(a, args.warmup)
        due = burst_due(rate, args.n)
        plan = [(f"b{i}", due) for i in range(args.n)]
        register_s = await _register(a, plan)
        overran = max(0.0, time.time() - due)
        done = await _wait_done(a, "b", args.n, args.timeout)
    finally:
        await a.stop()
        await a.close()
    starts = [r.started for r in read_records(a.rec.path) if r.slot.startswith("b")]
    if done is None:
        return {"n": args.n, "incomplete": True, "bodies": len(starts), "register_s": register_s}
    return {
        "n": args.n,
        "register_s": register_s,
        "registration_overran_s": overran,
        "all_started_s": max(starts) - due,
        "all_completed_s": done - due,
        "completed_per_s": args.n / (done - due),
        "bodies": len(starts),
    }


async def run_sustained(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    if not a.cron:
        return {"unsupported": True}
    await a.open(create=True)
    await a.start()
    try:
        await _warm_up(a, args.warmup)
        t0 = time.perf_counter()
        start = float(int(time.time() + args.lead))
        # A registration slower than the lead moves the window, never the schedules.
        await a.add_cron(args.n, start)
        register_s = time.perf_counter() - t0
        if time.time() > start:
            start = float(int(time.time()) + 1)
        window = (start, start + args.window)
        await asyncio.sleep(max(0.0, window[1] - time.time()))
        expected = expected_sustained(args.n, window)
        grace_end = time.monotonic() + 30
        while time.monotonic() < grace_end:
            if sustained_report(a.rec.path, args.n, window)["ran"] >= expected:
                break
            await asyncio.sleep(0.5)
    finally:
        await a.stop()
        await a.close()
    return {"register_s": register_s, **sustained_report(a.rec.path, args.n, window)}


async def run_scale_register(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Store ``n`` future one-time jobs as a client; the idle process is measured apart."""
    await a.open(create=True)
    far = time.time() + 365 * 86400
    t0 = time.perf_counter()
    batch = 10_000
    for start in range(0, args.n, batch):
        size = min(batch, args.n - start)
        # Due times shared by 1,000 jobs each, so batching clients can batch.
        await a.add_once([(f"s{start + i}", far + (start + i) // 1000) for i in range(size)])
    register_s = time.perf_counter() - t0
    await a.close()
    return {"n": args.n, "register_s": register_s, "register_per_s": args.n / register_s}


async def run_scale_idle(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    await a.open(create=False)
    await a.start()
    try:
        await asyncio.sleep(5.0)  # start-up work is not idle work
        cpu0, t0 = cpu_seconds(), time.monotonic()
        await asyncio.sleep(args.idle)
        cpu1, t1 = cpu_seconds(), time.monotonic()
        rss, nthreads = rss_mb(), threads()
    finally:
        await a.stop()
        await a.close()
    return {"rss_mb": rss, "idle_cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0), "threads": nthreads}


async def run_restart_serve(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await a.open(create=args.register)
    await a.start()
    started = time.time()
    try:
        if args.register:
            rate = await _warm_up(a, args.warmup)
            due = burst_due(rate, args.n)
            await a.add_once([(f"b{i}", due) for i in range(args.n)])
            log(f"registered; due at {due:.3f}")
        done = await _wait_done(a, "b", args.n, args.timeout)
    finally:
        await a.stop()
        await a.close()
    return {"completed": done is not None, "seconds": time.time() - started}


def main_for(adapter_cls: type[Adapter], argv: list[str] | None = None) -> int:
    """The command line of a peer script: ``run_X.py WORKLOAD [options]``."""
    import asyncio

    p = parser(adapter_cls.name)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    wd = workdir(args)
    rec = Recorder(wd / "bodies.txt")
    result: dict[str, Any]
    if args.workload == "restart-serve":
        if args.register and args.db == "pg":
            create_pg_db(args.name)
        a = adapter_cls(existing_db(args.db, args.name, wd), rec)
        result = asyncio.run(run_restart_serve(a, args))
    elif args.workload == "scale" and args.child:
        a = adapter_cls(existing_db(args.db, args.name, wd), rec)
        result = asyncio.run(run_scale_idle(a, args))
    elif args.workload == "scale":
        name = f"bench_{adapter_cls.name}_scale_{os.getpid()}".lower()
        if args.db == "pg":
            create_pg_db(name)
        try:
            a = adapter_cls(existing_db(args.db, name, wd), rec)
            result = asyncio.run(run_scale_register(a, args))
            result.update(_scale_child(args, name))
        finally:
            if args.db == "pg":
                drop_pg_db(name)
    else:
        run = {"precision": run_precision, "burst": run_burst, "sustained": run_sustained}
        with fresh_db(args.db, f"{adapter_cls.name}_{args.workload}", wd) as db:
            result = asyncio.run(run[args.workload](adapter_cls(db, rec), args))
    result["system"] = adapter_cls.name
    result["db"] = args.db
    emit(result)
    return 0


def _scale_child(args: argparse.Namespace, name: str) -> dict[str, Any]:
    import subprocess

    cmd = [
        sys.executable,
        sys.argv[0],
        "scale",
        "--child",
        "--db",
        args.db,
        "--name",
        name,
        "--idle",
        str(args.idle),
        "--workdir",
        str(args.workdir),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.idle + 600)
    if out.returncode != 0:
        raise RuntimeError(f"idle process failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))
