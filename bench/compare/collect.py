"""The run: every workload of every system in turn, saving each result as it goes so an
interrupted run can resume."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.compare.sizes import DB_LABEL, FULL, QUICK, RESULTS, ROOT, Sizes
from bench.compare.systems import command, ensure_peers_venv, peer_versions, restart_one, run_one

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


SUSTAINED_LAG_P99_MS = 1000.0


def kept_up(run: dict[str, Any]) -> bool:
    """Whether a sustained run kept up: every slot of the window ran exactly once, with
    lag p99 under a second."""
    if "error" in run or run.get("unsupported"):
        return False
    p99 = run["lag"].get("p99_ms")
    return (
        run["missing"] == 0
        and run["duplicated"] == 0
        and p99 is not None
        and p99 < SUSTAINED_LAG_P99_MS
    )


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

    def sustained_at(system: str, db: str, n: int) -> dict[str, Any]:
        args = ["--n", str(n), "--window", str(s.window), "--lead", "5"]
        return run_one(system, "sustained", db, [*args, "--warmup", str(s.warmup)], s.window + 900)

    def sustained(system: str, db: str) -> list[dict[str, Any]]:
        if system == "tickwork" and db == "pg":
            return [sustained_at(system, db, s.sustained_n)]
        # Every other system climbs the ladder while it keeps up: its ceiling is the
        # largest size it sustained.
        runs: list[dict[str, Any]] = []
        for n in s.sustained_ladder:
            runs.append(sustained_at(system, db, n))
            if not kept_up(runs[-1]):
                break
        return runs

    _runs(res, s.sustained, sustained, res.sustained, "sustained")

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
