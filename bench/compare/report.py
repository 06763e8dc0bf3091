"""The section of docs/benchmarks.md: the targets checked, the tables and the method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.compare.collect import Results, kept_up
from bench.compare.sizes import DB_LABEL, LABEL
from bench.compare.systems import RESTART_BODY_SECONDS
from bench.peers import _common as c

# -- the report ------------------------------------------------------------------------------------


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.1f} ms"


def _who(r: dict[str, Any]) -> str:
    return f"{LABEL[r['system']]} | {DB_LABEL[r['db']]}"


def _best_peer(
    rows: list[dict[str, Any]], db: str, key: Callable[[dict[str, Any]], float | None], higher: bool
) -> tuple[dict[str, Any] | None, float | None]:
    values = [
        (r, key(r))
        for r in rows
        if r["system"] not in ("tickwork", "seed")
        and r["db"] == db
        and "error" not in r
        and key(r) is not None
    ]
    if not values:
        return None, None
    r, v = (max if higher else min)(values, key=lambda x: x[1])  # type: ignore[arg-type,return-value]
    return r, v


def _tickwork(rows: list[dict[str, Any]], db: str, n: int | None = None) -> dict[str, Any] | None:
    for r in rows:
        if (
            r["system"] == "tickwork"
            and r["db"] == db
            and "error" not in r
            and (n is None or r.get("n") == n)
        ):
            return r
    return None


def render(res: Results, charts: list[str]) -> str:
    s = res.sizes
    lines = [
        "## tickwork beside its peers",
        "",
        "Written by `bench/compare/` (one command: `make bench`, or `python -m bench.run`). "
        "Each system runs in a process of its own, one after the other, on this machine's "
        "PostgreSQL 15 and on SQLite files: tickwork in its venv, the peers in "
        "`bench/.peers-venv`, which the benchmark creates from `bench/peers-requirements.txt` "
        "(never tickwork's dependencies). Every job body is the same no-op: it appends "
        "`slot start-time` to a file with one `write` (`bench/peers/_common.py`), and every "
        "figure below about runs — start lag, lost, duplicated — is read from those lines, "
        "not from the systems' bookkeeping. Every system runs at most "
        f"{c.CONCURRENCY} job bodies at once and, before measuring, runs "
        f"{s.warmup} jobs as a warm-up. Settings are each system's defaults except that bound "
        "(see *How each system is driven* below).",
        "",
    ]
    if res.quick:
        lines += [
            "**Quick mode: a smoke run with tiny sizes, peers on PostgreSQL only — "
            "not for comparison.**",
            "",
        ]
    versions = ", ".join(f"{k} {v}" for k, v in res.versions.items()) or "—"
    lines += [
        f"- Peers: {versions}",
        f"- Peers' install: {'ok' if not res.peers_error else res.peers_error}",
        f"- Load average (1/5/15 min) at start {res.load[0]:.2f}/{res.load[1]:.2f}/"
        f"{res.load[2]:.2f}, at end {res.load[3]:.2f}/{res.load[4]:.2f}/{res.load[5]:.2f} "
        "(the machine is shared; other work ran at the same time)"
        if len(res.load) >= 6
        else "- Load average: —",
        f"- This section took {res.seconds / 60:.1f} minutes.",
        "",
    ]
    lines += _targets(res)
    lines += _precision_table(res)
    lines += _burst_table(res)
    lines += _sustained_table(res)
    lines += _scale_table(res)
    lines += _restart_table(res)
    if charts:
        lines += ["### Charts", ""]
        lines += [f"![{name}](benchmarks/{name})" for name in charts]
        lines.append("")
    lines += _method(res)
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.1f}×"


def _targets(res: Results) -> list[str]:
    lines = ["### Targets", "", "| target | measured | met |", "|---|---|---|"]

    def row(target: str, measured: str, met: bool | None) -> None:
        lines.append(
            f"| {target} | {measured} | {'—' if met is None else ('yes' if met else '**no**')} |"
        )

    s = res.sizes
    tw = _tickwork(res.burst, "pg", s.burst_n)
    peer, pv = _best_peer(res.burst, "pg", lambda r: r.get("completed_per_s"), True)
    if tw and peer and pv:
        ratio = tw["completed_per_s"] / pv
        row(
            "burst throughput on PostgreSQL ≥ 3× the best peer",
            f"{tw['completed_per_s']:,.0f}/s vs {LABEL[peer['system']]} {pv:,.0f}/s = {ratio:.1f}×",
            ratio >= 3,
        )
    else:
        row("burst throughput on PostgreSQL ≥ 3× the best peer", "no peer figure", None)
    tw = _tickwork(res.sustained, "pg")
    what = (
        f"sustained: {s.sustained_n:,} schedules/min on PostgreSQL, lag p99 < 1 s, "
        "none missing or doubled"
    )
    if tw:
        row(
            what,
            f"lag p99 {_ms(tw['lag'].get('p99_ms'))}, {tw['missing']:,} missing, "
            f"{tw['duplicated']:,} doubled of {tw['expected']:,}",
            kept_up(tw),
        )
    else:
        row(what, "no figure (the run failed)", False)
    peers = {
        key: ceiling
        for key, ceiling in sustained_ceilings(res.sustained).items()
        if key[0] not in ("tickwork", "seed") and key[1] == "pg"
    }
    what = "sustained on PostgreSQL ≥ 3× the best peer's ceiling"
    if tw and peers:
        (best, _), ceiling = max(peers.items(), key=lambda kv: kv[1])
        mine = tw["schedules"] if kept_up(tw) else 0
        shown = f"{ceiling:,}" if ceiling else "none of the sizes"
        ratio = mine / ceiling if ceiling else None
        row(
            what,
            f"tickwork {mine:,} vs {LABEL[best]} {shown} schedules/min"
            + (f" = {ratio:.1f}×" if ratio is not None else ""),
            mine > 0 and (ratio is None or ratio >= 3),
        )
    else:
        row(what, "no peer figure", None)
    seed = next((r for r in res.precision if r["system"] == "seed" and "error" not in r), None)
    for db in ("pg", "sqlite"):
        tw = _tickwork(res.precision, db)
        if tw and seed:
            ratio = seed["lag"]["p99_ms"] / tw["lag"]["p99_ms"]
            row(
                f"fire-precision p99 ≥ 100× better than the seed's design ({DB_LABEL[db]})",
                f"{_ms(tw['lag']['p99_ms'])} vs {_ms(seed['lag']['p99_ms'])} = {ratio:,.0f}×",
                ratio >= 100,
            )
    for r in res.restart:
        if r["system"] == "tickwork":
            what = f"restart: zero lost, duplicates ≤ attempts in flight ({DB_LABEL[r['db']]})"
            if "error" in r:
                row(what, r["error"], False)
            else:
                row(
                    what,
                    f"{r['lost']} lost, {r['duplicated']} duplicated of {r['n']:,}; "
                    f"{r['held_at_kill']} attempts in flight at the kill "
                    f"({r['running_at_kill']} bodies running)",
                    r["lost"] == 0 and r["duplicated"] <= r["held_at_kill"],
                )
    sizes = sorted(
        (
            r
            for r in res.scale
            if r["system"] == "tickwork" and r["db"] == "pg" and "error" not in r
        ),
        key=lambda r: r["n"],
    )
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        growth = big["rss_mb"] - small["rss_mb"]
        row(
            "scheduling memory does not grow with the number of schedules",
            f"`tickwork serve` RSS {small['rss_mb']:.0f} MB with {small['n']:,} stored, "
            f"{big['rss_mb']:.0f} MB with {big['n']:,} ({growth:+.0f} MB)",
            growth < max(10.0, 0.1 * small["rss_mb"]),
        )
    lines.append("")
    return lines


def _err(r: dict[str, Any], cols: int) -> str:
    return f"| {_who(r)} | " + f"*{r['error']}* |" + " |" * (cols - 3)


def _precision_table(res: Results) -> list[str]:
    s = res.sizes
    lines = [
        "### 1. Fire precision",
        "",
        f"{s.precision_n:,} one-time jobs due evenly over {s.spread:.0f} s, created "
        f"{s.lead:.0f} s ahead; lag = start of the job body − its due time. The seed's "
        "design ticks at each minute boundary, so its lag is spread over a whole minute by "
        "construction. The last column compares each p99 with tickwork's on the same "
        "database (the seed's with tickwork on SQLite).",
        "",
        "| system | database | p50 | p99 | max | jobs run | p99 ÷ tickwork's p99 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in res.precision:
        if "error" in r:
            lines.append(_err(r, 7))
            continue
        lag = r["lag"]
        tw = _tickwork(res.precision, r["db"])
        ratio = _ratio(lag.get("p99_ms"), tw["lag"]["p99_ms"] if tw else None)
        lines.append(
            f"| {_who(r)} | {_ms(lag.get('p50_ms'))} | {_ms(lag.get('p99_ms'))} | "
            f"{_ms(lag.get('max_ms'))} | {lag.get('count', 0):,} | "
            f"{'—' if r['system'] == 'tickwork' else ratio} |"
        )
    lines.append("")
    return lines


def _span(r: dict[str, Any], key: str, fmt: str) -> str:
    med = format(r[key], fmt)
    if r.get("reps", 1) > 1:
        return f"{med} ({format(r[key + '_min'], fmt)}–{format(r[key + '_max'], fmt)})"
    return med


def _burst_table(res: Results) -> list[str]:
    s = res.sizes
    lines = [
        "### 2. Burst",
        "",
        f"{s.burst_n:,} jobs due at the same instant (scaled down from a burst of 10,000 for "
        "every system: the slowest peers need minutes per run on this machine"
        + (f"; tickwork also runs at {s.burst_big_n:,}" if s.burst_big_n else "")
        + "), no-op body. Times from the due instant; "
        f"median of up to {s.burst_reps} runs (min–max) — a peer repeats only while one run "
        "stays under 45 s. *tickwork ÷* = tickwork's completed/s (same size, same "
        "database) divided by this system's.",
        "",
        "| system | database | jobs | runs | all started | all completed | completed/s "
        "| tickwork ÷ |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res.burst:
        if "error" in r:
            lines.append(_err(r, 8))
            continue
        tw = _tickwork(res.burst, r["db"], s.burst_n)
        ratio = (
            "—"
            if r["system"] == "tickwork"
            else _ratio(tw["completed_per_s"] if tw else None, r["completed_per_s"])
        )
        lines.append(
            f"| {_who(r)} | {r['n']:,} | {r.get('reps', 1)} | {_span(r, 'all_started_s', '.2f')} s "
            f"| {_span(r, 'all_completed_s', '.2f')} s | {_span(r, 'completed_per_s', ',.0f')} "
            f"| {ratio} |"
        )
    lines.append("")
    return lines


def _sustained_table(res: Results) -> list[str]:
    s = res.sizes
    ladder = ", ".join(f"{n:,}" for n in s.sustained_ladder)
    lines = [
        "### 3. Sustained",
        "",
        f"Schedules firing every minute (`S * * * * *`, S = i mod 60: the load spread over "
        f"the seconds), measured over {s.window:.0f} s: tickwork on PostgreSQL with "
        f"{s.sustained_n:,} schedules; every other system climbs {ladder} schedules and stops "
        "at the first size it does not keep up with. A run *keeps up* when every slot of the "
        "window runs exactly once and lag p99 < 1 s; a system's *ceiling* is the largest "
        "size it kept up with. Lag = body start − the slot's nominal time; completed/s = "
        "bodies started inside the window ÷ its length (the offered load caps it); missing "
        "= slots of the window not run within 30 s after it.",
        "",
        "| system | database | schedules | expected | ran | missing | duplicated | lag p50 "
        "| lag p99 | lag max | completed/s | offered/s | kept up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in res.sustained:
        if "error" in r:
            lines.append(_err(r, 13))
            continue
        if r.get("unsupported"):
            lines.append(f"| {_who(r)} | *cannot: no dynamic schedules* |" + " |" * 11)
            continue
        lag = r["lag"]
        lines.append(
            f"| {_who(r)} | {r['schedules']:,} | {r['expected']:,} | {r['ran']:,} | "
            f"{r['missing']:,} | {r['duplicated']:,} | {_ms(lag.get('p50_ms'))} | "
            f"{_ms(lag.get('p99_ms'))} | {_ms(lag.get('max_ms'))} | "
            f"{r['completed_per_s']:,.1f} | {r['offered_per_s']:,.1f} | "
            f"{'yes' if kept_up(r) else '**no**'} |"
        )
    lines += ["", "| system | database | ceiling (schedules per minute) |", "|---|---|---:|"]
    for (system, db), ceiling in sustained_ceilings(res.sustained).items():
        shown = f"{ceiling:,}" if ceiling else "below the smallest size"
        lines.append(f"| {LABEL[system]} | {DB_LABEL[db]} | {shown} |")
    lines.append("")
    return lines


def sustained_ceilings(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Each system's largest sustained size it kept up with (0: none)."""
    ceilings: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["system"], r["db"])
        size = r.get("schedules", 0) if kept_up(r) else 0
        ceilings[key] = max(ceilings.get(key, 0), size)
    return ceilings


def _scale_table(res: Results) -> list[str]:
    s = res.sizes
    lines = [
        "### 4. Scale",
        "",
        f"Jobs stored far in the future, none due: {s.scale_n:,} for every system (scaled "
        "down from 1,000,000: at the peers' registration rates that alone would "
        f"take hours), tickwork on PostgreSQL also at other sizes. Registration from a "
        "client process with each system's fastest public path (tickwork: batched row "
        "inserts, as `bench/engine.py`; APScheduler: `add_schedule`, 50 at a time; DBOS: "
        "delayed `enqueue`, 50 at a time; procrastinate: `batch_defer`). Then a fresh "
        f"scheduling process (tickwork: a real `tickwork serve`) idles over them for "
        f"{s.idle:.0f} s: its CPU and resident memory.",
        "",
        "| system | database | stored | registration | per second | idle CPU | RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in res.scale:
        if "error" in r:
            lines.append(_err(r, 7))
            continue
        lines.append(
            f"| {_who(r)} | {r['n']:,} | {r['register_s']:.1f} s | {r['register_per_s']:,.0f} "
            f"| {r['idle_cpu_percent']:.1f} % | {r['rss_mb']:.0f} MB |"
        )
    lines.append("")
    return lines


def _restart_table(res: Results) -> list[str]:
    s = res.sizes
    lines = [
        "### 5. Restart",
        "",
        f"A burst of {s.restart_n:,} jobs whose bodies last {RESTART_BODY_SECONDS * 1000:.0f} ms; "
        "once the bodies have recorded a third of them, the whole scheduling process "
        "(scheduler and workers: each system's usual deployment) is killed with SIGKILL and "
        "started again. Lost = slots no body ever ran; duplicated = extra runs of a slot, "
        "both from the bodies' lines. Running = bodies started and not returned at the "
        "kill; in flight = attempts the system still held at the kill (claimed, no outcome "
        "stored: what an at-least-once system may run again; tickwork's `running` rows); "
        "of finished = duplicates whose first body had returned before the kill (an "
        "outcome not yet stored). Recovery = from the kill until the system reports every "
        "job done (leases of the dead process expire first: tickwork 30 s, APScheduler "
        "30 s, procrastinate 30 s heartbeat).",
        "",
        "| system | database | jobs | ran before the kill | running | in flight | lost "
        "| duplicated | of finished | recovered | recovery |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in res.restart:
        if "error" in r:
            lines.append(_err(r, 11))
            continue
        held = r.get("held_at_kill")
        lines.append(
            f"| {_who(r)} | {r['n']:,} | {r['killed_after']:,} | {r['running_at_kill']:,} | "
            f"{'—' if held is None else f'{held:,}'} | {r['lost']:,} | {r['duplicated']:,} | "
            f"{r['duplicated_finished']:,} | {'yes' if r['recovered'] else '**no**'} | "
            f"{r['recovery_s']:.1f} s |"
        )
    lines.append("")
    return lines


def _method(res: Results) -> list[str]:
    return [
        "### How each system is driven",
        "",
        f"- **tickwork**: `Node` (scheduler + worker pool, as `tickwork serve` runs them) in "
        f"the benchmark process, worker concurrency {c.CONCURRENCY}, a registered async "
        "Python handler; triggers inserted in batches (`bench/engine.py`), which is what a "
        "definition push does; cron triggers are 6-field. `bench/peers/run_tickwork.py`.",
        f"- **APScheduler 4**: `AsyncScheduler` (scheduler + worker roles) with "
        "`SQLAlchemyDataStore` (asyncpg / aiosqlite) and the local event broker; a "
        "`DateTrigger` schedule per one-time job, `CronTrigger(second=S)` per cron "
        f"schedule; `max_concurrent_jobs={c.CONCURRENCY}`, the task's `max_running_jobs` "
        "unbounded (its default, 1, would serialise everything). Jobs of a killed scheduler "
        "wait for their 30 s lease. `bench/peers/run_apscheduler.py`.",
        f"- **DBOS Transact**: `DBOS.launch()` in-process, a queue with "
        f"`worker_concurrency={c.CONCURRENCY}` and the default 1 s polling interval — so at "
        f"most {c.CONCURRENCY} workflows start per second per process by design; one-time "
        "jobs are async workflows enqueued with `SetWorkflowID(slot)` and "
        "`SetEnqueueOptions(delay_seconds=…)`; cron schedules are `DBOS.create_schedule` "
        "(a thread per schedule, up to 10 % jitter by design). Its scale figures use "
        "delayed workflows. `bench/peers/run_dbos.py`.",
        f"- **procrastinate**: one worker (`concurrency={c.CONCURRENCY}`, default 5 s polling "
        "for jobs scheduled ahead, LISTEN/NOTIFY on) in-process; one-time jobs deferred with "
        "`schedule_at` in batches (`batch_defer_async`); cron schedules are periodic tasks "
        "registered per `periodic_id` (deferred by the worker's periodic deferrer); stalled "
        "jobs of a killed worker retried with the documented recipe (`get_stalled_jobs` → "
        "`retry_job`, every 5 s). PostgreSQL only. `bench/peers/run_procrastinate.py`.",
        "- **seed's design**: `bench/peers/run_seed.py` — wake at each minute boundary, "
        "select due rows, start a run for each, advance `next_run_at`; SQLite. Fire "
        "precision only.",
        "",
    ]
