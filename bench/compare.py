"""tickwork beside its peers, on this machine, in one run (issue 6).

    python -m bench.compare            # the section alone, full sizes (long)
    python -m bench.run                # every benchmark, writes docs/benchmarks.md
    BENCH_RESUME=1 python -m bench.run # reuse what an interrupted run saved

Each finished (workload, system, database) is saved to ``bench/results/compare-partial.json``
as the run goes; ``BENCH_RESUME=1`` takes those instead of running them again.

The peers (APScheduler 4, DBOS Transact, procrastinate) are installed by this benchmark
into a virtualenv of their own, ``bench/.peers-venv``, from ``bench/peers-requirements.txt``;
never into tickwork's. Every workload of every system runs as a subprocess — a script per
system under ``bench/peers/`` — that prints one JSON document; tickwork's runs in tickwork's
venv (``bench/peers/run_tickwork.py``). Systems run one after the other, never at once.

The job body of every system is the same no-op that appends one line to a file
(``bench/peers/_common.py``): start times, lost runs and duplicated runs are read from
those lines. A peer that fails or cannot do a workload is reported as such; tickwork
failing fails the benchmark.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.peers import _common as c

LIBRARIES: tuple[str, ...] = ("psycopg",)
ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEERS_REQUIREMENTS = ROOT / "bench" / "peers-requirements.txt"
PEERS_PY = PEERS_VENV / "bin" / "python"
RESULTS = ROOT / "bench" / "results"
CHARTS = ROOT / "docs" / "benchmarks"
PEER_DISTRIBUTIONS = ("APScheduler", "dbos", "procrastinate", "SQLAlchemy", "asyncpg", "aiosqlite")

LABEL = {
    "tickwork": "tickwork",
    "apscheduler": "APScheduler 4",
    "dbos": "DBOS Transact",
    "procrastinate": "procrastinate",
    "seed": "seed's design",
}
DB_LABEL = {"pg": "PostgreSQL", "sqlite": "SQLite"}


@dataclass(frozen=True)
class Sizes:
    precision_n: int
    spread: float
    lead: float
    burst_n: int
    burst_big_n: int  # tickwork alone, at the full size
    burst_reps: int  # tickwork's repetitions; a peer repeats while a run stays short
    sustained_n: int
    window: float
    scale_n: int
    scale_sizes_tickwork: tuple[int, ...]
    idle: float
    restart_n: int
    warmup: int
    # (system, db) pairs per workload
    precision: tuple[tuple[str, str], ...]
    burst: tuple[tuple[str, str], ...]
    sustained: tuple[tuple[str, str], ...]
    scale: tuple[tuple[str, str], ...]
    restart: tuple[tuple[str, str], ...]


ALL_ONCE = (
    ("tickwork", "pg"),
    ("apscheduler", "pg"),
    ("dbos", "pg"),
    ("procrastinate", "pg"),
    ("tickwork", "sqlite"),
    ("apscheduler", "sqlite"),
    ("dbos", "sqlite"),
)
PG_ONLY = (
    ("tickwork", "pg"),
    ("apscheduler", "pg"),
    ("dbos", "pg"),
    ("procrastinate", "pg"),
    ("tickwork", "sqlite"),
)

FULL = Sizes(
    precision_n=1000,
    spread=60.0,
    lead=5.0,
    burst_n=2000,
    burst_big_n=10_000,
    burst_reps=3,
    sustained_n=3000,
    window=120.0,
    scale_n=20_000,
    scale_sizes_tickwork=(1000, 200_000),
    idle=60.0,
    restart_n=2000,
    warmup=50,
    precision=(*ALL_ONCE, ("seed", "sqlite")),
    burst=ALL_ONCE,
    sustained=PG_ONLY,
    scale=PG_ONLY,
    restart=PG_ONLY,
)
QUICK = Sizes(
    precision_n=50,
    spread=3.0,
    lead=2.0,
    burst_n=200,
    burst_big_n=0,
    burst_reps=1,
    sustained_n=60,
    window=8.0,
    scale_n=500,
    scale_sizes_tickwork=(),
    idle=2.0,
    restart_n=200,
    warmup=10,
    precision=(
        ("tickwork", "pg"),
        ("tickwork", "sqlite"),
        ("apscheduler", "pg"),
        ("dbos", "pg"),
        ("procrastinate", "pg"),
        ("seed", "sqlite"),
    ),
    burst=(
        ("tickwork", "pg"),
        ("tickwork", "sqlite"),
        ("apscheduler", "pg"),
        ("dbos", "pg"),
        ("procrastinate", "pg"),
    ),
    sustained=(("tickwork", "pg"), ("tickwork", "sqlite")),
    scale=(("tickwork", "pg"), ("tickwork", "sqlite")),
    restart=(("tickwork", "pg"),),
)


class TickworkFailed(RuntimeError):
    """tickwork's own part failed: the benchmark fails."""


# -- the peers' venv ---------------------------------------------------------------------------


def ensure_peers_venv() -> str | None:
    """Create/refresh ``bench/.peers-venv``; returns None when ready, else why not."""
    digest = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes()).hexdigest()
    stamp = PEERS_VENV / ".installed"
    if PEERS_PY.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return None
    print("   setting up bench/.peers-venv (peers' own virtualenv)", flush=True)
    try:
        if not PEERS_PY.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run(
            [
                str(PEERS_PY),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(PEERS_REQUIREMENTS),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as exc:
        return f"peers' install failed: {(exc.stderr or str(exc)).strip().splitlines()[-1:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"peers' install failed: {exc}"
    stamp.write_text(digest)
    return None


def peer_versions() -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        f"names = {list(PEER_DISTRIBUTIONS)!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
        "print(json.dumps(out))\n"
    )
    try:
        out = subprocess.run(
            [str(PEERS_PY), "-c", code], capture_output=True, text=True, timeout=60
        )
        return dict(json.loads(out.stdout))
    except Exception:
        return {}


# -- running one workload of one system ------------------------------------------------------------


def command(system: str) -> list[str]:
    if system == "tickwork":
        return [sys.executable, "-m", "bench.peers.run_tickwork"]
    return [str(PEERS_PY), str(ROOT / "bench" / "peers" / f"run_{system}.py")]


def run_one(system: str, workload: str, db: str, opts: list[str], timeout: float) -> dict[str, Any]:
    """One run; a failed run is tried once more (the machine and its PostgreSQL are
    shared: another client may, say, terminate our connections) before it counts."""
    try:
        first = _run_one(system, workload, db, opts, timeout)
    except TickworkFailed as exc:
        print(f"     tickwork failed ({exc}); trying once more", flush=True)
        return _run_one(system, workload, db, opts, timeout)
    if "error" in first:
        print(f"     failed ({first['error']}); trying once more", flush=True)
        return _run_one(system, workload, db, opts, timeout)
    return first


def _run_one(
    system: str, workload: str, db: str, opts: list[str], timeout: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tickwork-compare-") as wd:
        cmd = [*command(system), workload, "--db", db, "--workdir", wd, *opts]
        t0 = time.monotonic()
        try:
            out = subprocess.run(
                cmd,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        except subprocess.TimeoutExpired:
            return _failed(system, f"did not finish within {timeout:.0f} s")
        wall = time.monotonic() - t0
        if out.returncode != 0:
            tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
            return _failed(system, " / ".join(tail)[-400:] or f"exit status {out.returncode}")
        try:
            result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return _failed(system, "no JSON result on stdout")
        result["wall_s"] = wall
        return result


def _failed(system: str, why: str) -> dict[str, Any]:
    if system == "tickwork":
        raise TickworkFailed(why)
    return {"error": why}


# Each body of the restart workload lasts this long, so the kill finds some running.
RESTART_BODY_SECONDS = float(os.environ.get("BENCH_RESTART_BODY_SECONDS", "0.05"))
# The attempts a system still holds at the kill (claimed, no outcome stored): what an
# at-least-once system may run again, at most.
HELD_SQL = {"tickwork": "SELECT count(*) FROM invocations WHERE status = 'running'"}


def restart_one(system: str, db: str, n: int, warmup: int, timeout: float) -> dict[str, Any]:
    """Kill the scheduling process (SIGKILL) a third of the way through a burst, start it
    again, and count the runs lost and duplicated from the bodies' own lines; set them
    against the bodies running at the kill and the attempts the system still held."""
    name = f"bench_restart_{system}_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="tickwork-restart-") as wd:
        bodies = Path(wd) / "bodies.txt"
        base = [
            *command(system),
            "restart-serve",
            "--db",
            db,
            "--name",
            name,
            "--n",
            str(n),
            "--warmup",
            str(warmup),
            "--workdir",
            wd,
        ]
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "BENCH_BODY_SECONDS": str(RESTART_BODY_SECONDS),
        }
        first = subprocess.Popen(
            [*base, "--register", "--timeout", str(timeout)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        killed_at = None
        try:

            def ran() -> int:
                return sum(1 for r in c.read_records(bodies) if r.slot.startswith("b"))

            if not c.wait_until(
                lambda: ran() >= n * 0.3 or first.poll() is not None, timeout, 0.02
            ):
                return _failed(system, "the burst never reached a third")
            if first.poll() is not None:
                err = first.stderr.read().decode(errors="replace") if first.stderr else ""
                return _failed(system, f"exited before the kill: {err.strip()[-300:]}")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
            t_kill = time.monotonic()
            killed_at = ran()
            started = {r.slot for r in c.read_records(bodies) if r.slot.startswith("b")}
            finished = c.read_ends(bodies)
            held = None
            if system in HELD_SQL:
                held = c.sql_count(c.existing_db(db, name, Path(wd)), HELD_SQL[system])
            second = subprocess.run(
                [*base, "--timeout", str(timeout)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout + 120,
            )
            if second.returncode != 0:
                tail = second.stderr.strip().splitlines()[-3:]
                return _failed(system, "restarted process failed: " + " / ".join(tail)[-300:])
            status = json.loads(second.stdout.strip().splitlines()[-1])
            counts = c.lost_and_duplicated(bodies, [f"b{i}" for i in range(n)])
            runs = collections.Counter(r.slot for r in c.read_records(bodies))
            return {
                "n": n,
                "killed_after": killed_at,
                "running_at_kill": len(started - finished),
                "held_at_kill": held,
                "duplicated_finished": sum(runs[s] - 1 for s in finished if runs[s] > 1),
                "recovered": bool(status.get("completed")),
                "recovery_s": time.monotonic() - t_kill,
                **counts,
            }
        finally:
            if first.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(first.pid, signal.SIGKILL)
                first.wait(30)
            if db == "pg":
                c.drop_pg_db(name)


def _retry(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        out = fn()
    except TickworkFailed as exc:
        print(f"     tickwork failed ({exc}); trying once more", flush=True)
        return fn()
    if "error" in out:
        print(f"     failed ({out['error']}); trying once more", flush=True)
        return fn()
    return out


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Results:
    quick: bool
    sizes: Sizes
    peers_error: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    precision: list[dict[str, Any]] = field(default_factory=list)
    burst: list[dict[str, Any]] = field(default_factory=list)
    sustained: list[dict[str, Any]] = field(default_factory=list)
    scale: list[dict[str, Any]] = field(default_factory=list)
    restart: list[dict[str, Any]] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    seconds: float = 0.0
    done: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _tag(result: dict[str, Any], system: str, db: str) -> dict[str, Any]:
    result["system"] = system
    result["db"] = db
    return result


def _skipped(system: str, db: str, why: str) -> dict[str, Any]:
    return {"system": system, "db": db, "error": why}


PARTIAL = RESULTS / "compare-partial.json"


def _load_partial(quick: bool) -> dict[str, list[dict[str, Any]]]:
    """With ``BENCH_RESUME=1``: the results that an interrupted run saved."""
    if os.environ.get("BENCH_RESUME") != "1" or not PARTIAL.exists():
        return {}
    data = json.loads(PARTIAL.read_text())
    return dict(data["done"]) if data.get("quick") == quick else {}


def _runs(
    res: Results,
    pairs: tuple[tuple[str, str], ...],
    fn: Callable[[str, str], Any],
    into: list[dict[str, Any]],
    title: str,
) -> None:
    for system, db in pairs:
        if system != "tickwork" and res.peers_error:
            into.append(_skipped(system, db, res.peers_error))
            continue
        key = f"{title}/{system}/{db}"
        if key in res.done:
            print(f"   {title}: {system} on {DB_LABEL[db]} (resumed)", flush=True)
            into.extend(res.done[key])
            continue
        print(f"   {title}: {system} on {DB_LABEL[db]}", flush=True)
        out = fn(system, db)
        got = [_tag(one, system, db) for one in (out if isinstance(out, list) else [out])]
        into.extend(got)
        for one in got:
            if "error" in one:
                print(f"     failed: {one['error']}", flush=True)
        if not any("error" in one for one in got):
            # Saved as it goes: BENCH_RESUME=1 resumes an interrupted run from here.
            res.done[key] = got
            RESULTS.mkdir(parents=True, exist_ok=True)
            PARTIAL.write_text(json.dumps({"quick": res.quick, "done": res.done}))


def burst_runs(system: str, db: str, s: Sizes, n: int, reps: int) -> dict[str, Any]:
    opts = ["--n", str(n), "--warmup", str(s.warmup), "--timeout", "900"]
    runs: list[dict[str, Any]] = []
    for _ in range(reps):
        one = run_one(system, "burst", db, opts, 1200)
        if "error" in one or one.get("incomplete"):
            if runs:
                break
            return one if "error" in one else {"error": "did not complete in time"}
        runs.append(one)
        # A peer repeats only while one run stays short: a long run is long enough as is.
        if system != "tickwork" and one.get("wall_s", 0) > 45:
            break
    return _combine(runs)


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": runs[0]["n"], "reps": len(runs)}
    for key in ("all_started_s", "all_completed_s", "completed_per_s", "register_s"):
        values = [r[key] for r in runs]
        out[key] = statistics.median(values)
        out[key + "_min"] = min(values)
        out[key + "_max"] = max(values)
    out["registration_overran_s"] = max(r.get("registration_overran_s", 0.0) for r in runs)
    return out


def collect(quick: bool) -> Results:
    s = QUICK if quick else FULL
    res = Results(quick=quick, sizes=s, load=list(os.getloadavg()), done=_load_partial(quick))
    t0 = time.monotonic()
    print("   compare: peers' venv", flush=True)
    res.peers_error = ensure_peers_venv()
    if res.peers_error:
        print(f"   {res.peers_error}; peers are marked as not run", flush=True)
    else:
        res.versions = peer_versions()

    seed_proc: subprocess.Popen[str] | None = None
    seed_dir = None
    if quick and not res.peers_error:
        # The seed ticks once a minute: in the smoke run it waits in the background.
        seed_dir = tempfile.mkdtemp(prefix="tickwork-seed-")
        seed_proc = subprocess.Popen(
            [
                *command("seed"),
                "precision",
                "--db",
                "sqlite",
                "--n",
                str(s.precision_n),
                "--spread",
                str(s.spread),
                "--lead",
                str(s.lead),
                "--warmup",
                "0",
                "--workdir",
                seed_dir,
                "--timeout",
                "90",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def precision(system: str, db: str) -> dict[str, Any]:
        if system == "seed" and seed_proc is not None:
            out, err = seed_proc.communicate(timeout=200)
            if seed_proc.returncode != 0:
                return {"error": err.strip().splitlines()[-1:] or "failed"}
            return dict(json.loads(out.strip().splitlines()[-1]))
        warm = "0" if system == "seed" else str(s.warmup)
        return run_one(
            system,
            "precision",
            db,
            [
                "--n",
                str(s.precision_n),
                "--spread",
                str(s.spread),
                "--lead",
                str(s.lead),
                "--warmup",
                warm,
                "--timeout",
                "90",
            ],
            600,
        )

    _runs(res, s.precision, precision, res.precision, "fire precision")
    _runs(
        res,
        s.burst,
        lambda sy, db: burst_runs(sy, db, s, s.burst_n, s.burst_reps),
        res.burst,
        "burst",
    )
    if s.burst_big_n:
        _runs(
            res,
            (("tickwork", "pg"), ("tickwork", "sqlite")),
            lambda sy, db: burst_runs(sy, db, s, s.burst_big_n, s.burst_reps),
            res.burst,
            "burst (full size)",
        )
    _runs(
        res,
        s.sustained,
        lambda sy, db: run_one(
            sy,
            "sustained",
            db,
            [
                "--n",
                str(s.sustained_n),
                "--window",
                str(s.window),
                "--lead",
                "5",
                "--warmup",
                str(s.warmup),
            ],
            s.window + 900,
        ),
        res.sustained,
        "sustained",
    )

    def scale(system: str, db: str) -> list[dict[str, Any]]:
        sizes = [s.scale_n]
        if system == "tickwork" and db == "pg":
            sizes = sorted({*s.scale_sizes_tickwork, s.scale_n})
        return [
            run_one(system, "scale", db, ["--n", str(n), "--idle", str(s.idle)], 3600)
            for n in sizes
        ]

    _runs(res, s.scale, scale, res.scale, "scale")
    _runs(
        res,
        s.restart,
        lambda sy, db: restart_one(sy, db, s.restart_n, s.warmup, 120),
        res.restart,
        "restart",
    )
    res.load += list(os.getloadavg())
    res.seconds = time.monotonic() - t0
    return res


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
        "Written by `bench/compare.py` (one command: `make bench`, or `python -m bench.run`). "
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
    peer, pv = _best_peer(res.sustained, "pg", lambda r: r.get("completed_per_s"), True)
    if tw and peer and pv:
        ratio = tw["completed_per_s"] / pv
        row(
            "sustained throughput on PostgreSQL ≥ 3× the best peer",
            f"{tw['completed_per_s']:,.1f}/s vs {LABEL[peer['system']]} {pv:,.1f}/s "
            f"= {ratio:.2f}× (offered load {tw['offered_per_s']:,.1f}/s)",
            ratio >= 3,
        )
    else:
        row("sustained throughput on PostgreSQL ≥ 3× the best peer", "no peer figure", None)
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
    lines = [
        "### 3. Sustained",
        "",
        f"{s.sustained_n:,} schedules firing every minute (`S * * * * *`, S = i mod 60: "
        f"the load spread over the seconds) measured over {s.window:.0f} s — scaled down "
        "from 50,000 schedules over 5 minutes for every system, since the peers' "
        "registration alone would take longer than the whole run (and DBOS starts a thread "
        "per schedule). Lag = body start − the slot's nominal time; completed/s = bodies "
        "started inside the window ÷ its length (the offered load caps it); missing = slots "
        "of the window not run within 30 s after it.",
        "",
        "| system | database | expected | ran | missing | duplicated | lag p50 | lag p99 "
        "| lag max | completed/s | offered/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res.sustained:
        if "error" in r:
            lines.append(_err(r, 11))
            continue
        if r.get("unsupported"):
            lines.append(f"| {_who(r)} | *cannot: no dynamic schedules* |" + " |" * 9)
            continue
        lag = r["lag"]
        lines.append(
            f"| {_who(r)} | {r['expected']:,} | {r['ran']:,} | {r['missing']:,} | "
            f"{r['duplicated']:,} | {_ms(lag.get('p50_ms'))} | {_ms(lag.get('p99_ms'))} | "
            f"{_ms(lag.get('max_ms'))} | {r['completed_per_s']:,.1f} | {r['offered_per_s']:,.1f} |"
        )
    lines.append("")
    return lines


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


def run(quick: bool) -> str:
    res = collect(quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    fields = {k: v for k, v in res.__dict__.items() if k != "done"}
    data = json.dumps(fields, default=lambda o: o.__dict__, indent=1)
    path = RESULTS / ("compare-quick.json" if quick else "compare.json")
    path.write_text(data)
    charts: list[str] = []
    if not res.peers_error:
        target = Path(tempfile.mkdtemp(prefix="tickwork-charts-")) if quick else CHARTS
        out = subprocess.run(
            [str(PEERS_PY), str(ROOT / "bench" / "peers" / "charts.py"), str(path), str(target)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode == 0 and not quick:
            charts = out.stdout.split()
        elif out.returncode != 0:
            print(f"   charts failed: {out.stderr.strip()[-300:]}", flush=True)
    return render(res, charts)


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
