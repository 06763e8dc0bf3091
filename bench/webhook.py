"""Webhook delivery: tickwork's webhook target beside raw HTTP clients, one receiver.

    python -m bench.webhook            # this section alone, full sizes
    python -m bench.webhook --quick    # small sizes (``make bench-quick`` runs it too)
    BENCH_WEBHOOK_BASELINE=<git revision> python -m bench.webhook
                                       # also tickwork as it was at that revision
    BENCH_WEBHOOK_REPS=3 BENCH_WEBHOOK_PRECISION_N=300 BENCH_WEBHOOK_SPREAD=3 \
        python -m bench.webhook        # a shorter full run

One no-op receiver (``bench/noop_receiver.py`` under uvicorn, a process of its own)
answers every variant, one after the other, each in a fresh process:

- *tickwork*: one-time triggers all due in the same second, on a fresh SQLite file, run
  by a scheduler and workers in one process (``bench.engine.burst``); completed/s is
  triggers ÷ (last completion − due time), so it includes claiming, the call and storing
  the outcome;
- *tickwork's target alone*: the same calls made straight through ``WebhookTarget`` with
  the workers' shared egress client, no database: the transport's own ceiling;
- *tickwork, no-op Python handler*: the same burst with a Python target, no HTTP at all:
  the engine's own ceiling;
- *raw* clients: the same JSON ``POST``, as many at once as tickwork's workers run, from
  aiohttp and httpx with their defaults, and httpx with a pool as large as that bound.

With a baseline revision, tickwork and its target alone also run from that revision's
``src/`` (extracted with ``git archive``), in the same run, so the two can be compared.
*Fire precision* is measured where it is felt, at the receiver: triggers due evenly over
some seconds, lag = arrival of the call − its ``scheduled_for``.

Every variant repeats (five times in full runs, interleaved) and the median is shown.
The receiver counts what arrives: tickwork delivering more or fewer calls than it was
given fails the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import engine
from tickwork.targets.python import HandlerRegistry

LIBRARIES = ("aiohttp", "httpx")
ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "50"))
BASELINE_ENV = "BENCH_WEBHOOK_BASELINE"
RAW_CLIENTS = {
    "aiohttp": "raw aiohttp (defaults)",
    "httpx": "raw httpx (defaults)",
    "httpx-pool": f"raw httpx (pool of {CONCURRENCY}, all kept alive)",
}


@dataclass(frozen=True)
class Sizes:
    burst_n: int
    reps: int
    precision_n: int
    spread: float


QUICK = Sizes(burst_n=300, reps=1, precision_n=100, spread=2.0)
FULL = Sizes(burst_n=2000, reps=5, precision_n=1000, spread=10.0)
# A shorter full run on a busy machine: fewer repetitions, a smaller precision run.
REPS_ENV, PRECISION_ENV, SPREAD_ENV = (
    "BENCH_WEBHOOK_REPS",
    "BENCH_WEBHOOK_PRECISION_N",
    "BENCH_WEBHOOK_SPREAD",
)


def _sizes(quick: bool) -> Sizes:
    base = QUICK if quick else FULL
    return Sizes(
        burst_n=base.burst_n,
        reps=int(os.environ.get(REPS_ENV, base.reps)),
        precision_n=int(os.environ.get(PRECISION_ENV, base.precision_n)),
        spread=float(os.environ.get(SPREAD_ENV, base.spread)),
    )


# -- the receiver -----------------------------------------------------------------------


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@dataclass(frozen=True)
class Receiver:
    url: str

    def _at(self, path: str) -> str:
        return self.url.rsplit("/", 1)[0] + path

    def reset(self) -> None:
        _get(self._at("/reset"))

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = _get(self._at("/stats"))
        return stats


# -- one variant in a process of its own --------------------------------------------------


def _subprocess(args: list[str], src: Path | None, timeout: float = 600) -> dict[str, Any]:
    env = {**os.environ, "TICKWORK_LOG_LEVEL": "WARNING"}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in (src, ROOT) if p is not None])
    out = subprocess.run(
        [sys.executable, "-m", "bench.webhook", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.webhook {args[0]} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def _baseline_source(revision: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tickwork-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "src"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp) / "src"


def _call_fields(i: int) -> dict[str, Any]:
    return {
        "invocation_id": f"inv_{i:06d}",
        "idempotency_key": f"sched:trg_{i:06d}:2026-03-08T07:00:00Z",
        "trigger_id": f"trg_{i:06d}",
        "trigger_name": f"t{i}",
        "tenant": "bench",
        "project": "p",
        "agent": "noop",
        "ref_name": "main",
        "ref_revision": 1,
        "scheduled_for": datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        "attempt": 1,
        "origin": "schedule",
        "message": json.dumps({"i": i}),
        "payload": {"i": i},
        "timezone": "UTC",
    }


async def _in_parallel(n: int, concurrency: int, one: Any) -> dict[str, float]:
    """Make ``n`` calls ``one(i)``, ``concurrency`` at a time: calls per second, and
    CPU milliseconds per call spent by this process."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"count": n, "completed_per_s": n / elapsed, "cpu_ms_per_call": 1000 * cpu / n}


def _target_alone(url: str, n: int, concurrency: int) -> dict[str, float]:
    from tickwork.clock import SystemClock
    from tickwork.runtime.workers import Targets
    from tickwork.settings import Settings
    from tickwork.targets.base import TargetCall

    async def main() -> dict[str, float]:
        # The workers' own client, as that revision builds it.
        settings = Settings(
            database_url="sqlite://",
            deployment_id="dep_bench",
            allow_private_targets=True,
            worker_concurrency=concurrency,
        )
        ctx: Any = SimpleNamespace(settings=settings, clock=SystemClock())
        targets = Targets(ctx)
        job: Any = SimpleNamespace(agent=SimpleNamespace(target={"type": "webhook", "url": url}))
        try:

            async def one(i: int) -> None:
                await targets.for_job(job).call(TargetCall(**_call_fields(i)))

            return await _in_parallel(n, concurrency, one)
        finally:
            await targets.close()

    return asyncio.run(main())


def _raw(client: str, url: str, n: int, concurrency: int) -> dict[str, float]:
    body = {k: str(v) for k, v in _call_fields(0).items()}
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": body["idempotency_key"]}

    async def with_aiohttp() -> dict[str, float]:
        import aiohttp

        async with aiohttp.ClientSession() as session:

            async def one(i: int) -> None:
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"the receiver answered {response.status}")

            return await _in_parallel(n, concurrency, one)

    async def with_httpx(pooled: bool) -> dict[str, float]:
        import httpx

        limits = (
            httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            if pooled
            else httpx.Limits()
        )
        async with httpx.AsyncClient(limits=limits) as http:

            async def one(i: int) -> None:
                response = await http.post(url, content=data, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"the receiver answered {response.status_code}")

            return await _in_parallel(n, concurrency, one)

    if client == "aiohttp":
        return asyncio.run(with_aiohttp())
    return asyncio.run(with_httpx(client == "httpx-pool"))


def _precision(url: str, n: int, spread: float, lead: float = 2.0) -> dict[str, float]:
    from tickwork.services import resources

    async def main() -> None:
        with engine.fresh_database("webhook_precision") as env:
            spec = {"type": "webhook", "url": url}
            resources.put_agent(env.ctx, "bench", "p", "main", "noop", None, spec)
            now = datetime.now(UTC)
            first = now + timedelta(seconds=lead)
            run_ats = [first + timedelta(seconds=spread * i / n) for i in range(n)]
            engine.insert_triggers(env.ctx, engine.trigger_rows("noop", run_ats, now))
            node, notifier = await engine.run_node(env, HandlerRegistry())
            notifier.triggers_changed()
            deadline = time.monotonic() + lead + spread + 60
            try:
                while await asyncio.to_thread(engine.count, env.ctx, "completed") < n:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the precision run did not finish in time")
                    await asyncio.sleep(0.05)
            finally:
                await node.stop()

    asyncio.run(main())
    return {"count": n}


def _child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook")
    parser.add_argument("workload", choices=["burst", "python", "target", "raw", "precision"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--client", default="aiohttp")
    parser.add_argument("--spread", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.workload == "burst":
        result = engine.burst(args.n, "webhook", args.url)
    elif args.workload == "python":
        result = engine.burst(args.n, "python")
    elif args.workload == "target":
        result = _target_alone(args.url, args.n, CONCURRENCY)
    elif args.workload == "raw":
        result = _raw(args.client, args.url, args.n, CONCURRENCY)
    else:
        result = _precision(args.url, args.n, args.spread)
    print(json.dumps(result))


# -- the section --------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def collect(quick: bool) -> dict[str, Any]:
    sizes = _sizes(quick)
    baseline = os.environ.get(BASELINE_ENV)
    load = [os.getloadavg()]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(engine.noop_webhook())
        receiver = Receiver(url)
        sources: dict[str, Path | None] = {"now": None}
        if baseline:
            sources[baseline] = stack.enter_context(_baseline_source(baseline))
        rows: dict[str, Row] = {}

        def measure(key: str, label: str, args: list[str], src: Path | None, check: bool) -> None:
            receiver.reset()
            result = _subprocess(args, src)
            stats = receiver.stats()
            got = stats["count"]
            if check and got != result["count"]:
                raise RuntimeError(f"{label}: the receiver got {got} calls for {result['count']}")
            row = rows.setdefault(key, Row(label))
            row.connections.append(int(stats.get("connections", 0)))
            if check and src is None and row.connections[-1] > CONCURRENCY:
                raise RuntimeError(
                    f"{label}: {row.connections[-1]} connections opened for {CONCURRENCY} slots"
                )
            row.rates.append(result["completed_per_s"])
            row.cpu_ms.append(result["cpu_ms_per_call"])

        n = str(sizes.burst_n)
        for _ in range(sizes.reps):
            for name, src in sources.items():
                at = "" if src is None else f" at `{name}`"
                measure(
                    f"burst {name}",
                    f"tickwork webhook{at}",
                    ["burst", "--url", url, "--n", n],
                    src,
                    True,
                )
                measure(
                    f"target {name}",
                    f"tickwork's target alone{at} (no engine)",
                    ["target", "--url", url, "--n", n],
                    src,
                    True,
                )
            measure(
                "python",
                "tickwork, no-op Python handler instead (the engine's ceiling)",
                ["python", "--url", url, "--n", n],
                None,
                False,
            )
            for client, label in RAW_CLIENTS.items():
                args = ["raw", "--client", client, "--url", url, "--n", n]
                measure(f"raw {client}", label, args, None, False)

        precision: dict[str, dict[str, float]] = {}
        for name, src in sources.items():
            receiver.reset()
            _subprocess(
                [
                    "precision",
                    "--url",
                    url,
                    "--n",
                    str(sizes.precision_n),
                    "--spread",
                    str(sizes.spread),
                ],
                src,
            )
            stats = receiver.stats()
            if stats["count"] != sizes.precision_n:
                raise RuntimeError(
                    f"precision: the receiver got {stats['count']} calls for {sizes.precision_n}"
                )
            ms = [lag * 1000 for lag in stats["lags"]]
            precision[name] = {
                "p50": statistics.median(ms),
                "p99": _pct(ms, 99),
                "max": max(ms),
            }
    load.append(os.getloadavg())
    return {
        "sizes": sizes,
        "baseline": baseline,
        "rows": rows,
        "precision": precision,
        "load": load,
    }


def _span(values: list[int]) -> str:
    if not values or max(values) == 0:
        return "—"
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def _version(distribution: str) -> str:
    from importlib import metadata

    return metadata.version(distribution)


def report(res: dict[str, Any]) -> str:
    sizes: Sizes = res["sizes"]
    rows: dict[str, Row] = res["rows"]
    baseline: str | None = res["baseline"]
    raw_aiohttp, raw_cpu = rows["raw aiohttp"].median, rows["raw aiohttp"].cpu
    load = " → ".join("/".join(f"{x:.2f}" for x in avg) for avg in res["load"])
    lines = [
        "## Webhook delivery",
        "",
        f"{sizes.burst_n:,} calls to one no-op receiver (uvicorn, a process of its own), "
        f"{CONCURRENCY} at a time, each variant in a fresh process; median of "
        f"{sizes.reps} interleaved run{'s' if sizes.reps > 1 else ''}. *tickwork webhook* is "
        f"{sizes.burst_n:,} one-time triggers due in the same second on SQLite, completed/s "
        "counted from the due time to the last stored outcome; *target alone* makes the "
        "same calls through `WebhookTarget` and the shared egress client without the "
        "engine; *raw* clients post the same JSON (`bench/webhook.py`). Target: tickwork "
        "≥ 30 % of raw aiohttp. *CPU per call* is what the sending process spent (every "
        "thread: for tickwork also claiming and storing outcomes), which other work on "
        "the machine disturbs far less than rates: raw aiohttp's CPU per call ÷ the "
        "variant's. *Connections opened* is what the receiver saw per run (the python "
        "handler makes no calls); tickwork's pools hold at most as many connections as "
        "there are worker slots and keep them alive, so it should not exceed "
        f"{CONCURRENCY}.",
        "",
        f"aiohttp {_version('aiohttp')}, httpx {_version('httpx')}. Load average "
        f"(1/5/15 min) at start and end: {load} on {os.cpu_count()} cores shared with "
        "other work.",
        "",
        "| variant | completed/s | runs (min–max) | ÷ raw aiohttp | CPU per call "
        "| raw aiohttp's CPU ÷ this | connections opened |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        spread = f"{min(row.rates):,.0f}–{max(row.rates):,.0f}" if len(row.rates) > 1 else "—"
        lines.append(
            f"| {row.label} | {row.median:,.0f} | {spread} | {row.median / raw_aiohttp:.1%} "
            f"| {row.cpu:.3f} ms | {raw_cpu / row.cpu:.1%} | {_span(row.connections)} |"
        )
    webhook, ceiling = rows["burst now"], rows["python"]
    met = "met" if webhook.median >= 0.3 * raw_aiohttp else "**not met**"
    lines += [
        "",
        f"tickwork webhook = {webhook.median / raw_aiohttp:.1%} of raw aiohttp by rate "
        f"(target ≥ 30 %: {met}), {raw_cpu / webhook.cpu:.1%} by CPU per call, and "
        f"{webhook.median / ceiling.median:.0%} of the engine's ceiling with a Python "
        "handler.",
    ]
    if baseline:
        lines += ["", f"Against `{baseline}` in the same run:", ""]
        for key, what in (("burst", "tickwork webhook"), ("target", "the target alone")):
            now, then = rows[f"{key} now"], rows[f"{key} {baseline}"]
            lines.append(
                f"- {what}: {now.median:,.0f}/s vs {then.median:,.0f}/s = "
                f"{now.median / then.median:.1f}× the rate; {now.cpu:.3f} vs "
                f"{then.cpu:.3f} ms of CPU per call = {then.cpu / now.cpu:.1f}× less"
            )
    lines += [
        "",
        f"**Fire precision at the receiver** — {sizes.precision_n:,} one-time webhook "
        f"triggers due evenly over {sizes.spread:g} s; lag = arrival of the call − its "
        "`scheduled_for` (target p99 ≤ 100 ms).",
        "",
        "| code | p50 | p99 | max |",
        "|---|---:|---:|---:|",
    ]
    for name, p in res["precision"].items():
        label = "this revision" if name == "now" else f"`{name}`"
        lines.append(f"| {label} | {p['p50']:.1f} ms | {p['p99']:.1f} ms | {p['max']:.1f} ms |")
    lines.append("")
    return "\n".join(lines)


def run(quick: bool) -> str:
    return report(collect(quick))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("burst", "python", "target", "raw", "precision"):
        _child(sys.argv[1:])
    else:
        print(run("--quick" in sys.argv))
