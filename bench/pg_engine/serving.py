"""``tickwork serve`` processes of the sections that need them, and waiting on them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.pg_engine.common import ROOT

# -- subprocesses: tickwork serve --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def events(self, event: str, after: float = 0.0) -> list[float]:
        """Instants (epoch seconds) of the JSON log lines with this event, after ``after``."""
        found = []
        for doc in self.lines():
            if doc.get("event") == event:
                ts = datetime.fromisoformat(doc["ts"].replace("Z", "+00:00")).timestamp()
                if ts > after:
                    found.append(ts)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_serve(
    url: str,
    roles: tuple[str, ...],
    logdir: Path,
    name: str,
    env: dict[str, str] | None = None,
    app: str | None = None,
    api: bool = False,
) -> Serve:
    port = _free_port() if api else None
    cmd = [sys.executable, "-m", "tickwork", "serve"]
    for role in roles:
        cmd += ["--role", role]
    if port is not None:
        cmd += ["--port", str(port)]
    if app:
        cmd += ["--app", app]
    full_env = {
        **os.environ,
        "TICKWORK_DATABASE_URL": url,
        "TICKWORK_LOG_FORMAT": "json",
        **(env or {}),
    }
    log_path = logdir / f"{name}.log"
    out = log_path.open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return Serve(proc, log_path, port)


def wait_ready(serve: Serve, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.proc.poll() is not None:
            raise RuntimeError(
                f"tickwork serve exited ({serve.proc.returncode}):\n"
                + serve.log_path.read_text(errors="replace")[-3000:]
            )
        if "  roles:" in serve.log_path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"tickwork serve did not start in {timeout} s")


def http(method: str, url: str, token: str, timeout: float = 10.0) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        method=method,
        headers={"Authorization": f"Bearer {token}"},
        data=b"" if method == "POST" else None,
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return dict(json.loads(resp.read()))


def wait_for(check: Callable[[], Any], timeout: float, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout} s waiting for {check}")
