"""``make serve`` takes its port from TICKWORK_PORT: the target runs ``tickwork serve``
without ``--port``, and ``tickwork serve`` listens where TICKWORK_PORT says."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.serving import Serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_make_serve_runs_tickwork_serve_without_a_port_of_its_own() -> None:
    dry = subprocess.run(
        ["make", "-n", "-W", ".venv/.installed", "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    commands = [line for line in dry.stdout.splitlines() if "tickwork serve" in line]
    assert commands == [".venv/bin/tickwork serve"], dry.stdout


def test_serve_listens_on_the_port_tickwork_port_names(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "TICKWORK_PORT": str(port),
        "TICKWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'tickwork.db'}",
    }
    with Serve(cwd=tmp_path, env=env) as server:
        server.start()  # its banner is printed once the port is bound
        line = server.output[0]
        assert re.search(rf"serving on http://127\.0\.0\.1:{port}\b", line), line
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() == {"status": "ok"}
