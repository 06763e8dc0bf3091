"""The peers' virtualenv, and one workload (or one restart) of one system, run as a
subprocess that prints one JSON document."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.compare.sizes import (
    PEER_DISTRIBUTIONS,
    PEERS_PY,
    PEERS_REQUIREMENTS,
    PEERS_VENV,
    ROOT,
    TickworkFailed,
)
from bench.peers import _common as c

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
