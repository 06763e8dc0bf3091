"""The Node receiver of docs/webhooks.md, run by Node with the ``standardwebhooks`` npm
package, accepts real deliveries of tickwork's webhook target (both forms of secret),
recognises a repeated invocation, and refuses a forged one."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration.targets.capture import capture_server, deliver, webhook_call
from tests.serving import Process

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
NPM_PACKAGE = "standardwebhooks@1.1.1"
WHSEC = "whsec_" + base64.b64encode(b"node-example-key-32-bytes-long!!").decode()


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: the Node example is not run")
    where = tmp_path_factory.mktemp("node-receiver")
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", NPM_PACKAGE],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if installed.returncode != 0:
        pytest.skip(f"npm could not install {NPM_PACKAGE}: {installed.stderr[-500:]}")
    [example] = re.findall(r"^```js\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)
    (where / "receiver.js").write_text(example)
    return where


@contextmanager
def node_receiver(project: Path, secret: str) -> Iterator[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "TICKWORK_WEBHOOK_SECRET": secret}
    with Process(["node", "receiver.js"], cwd=project, env=env) as node:
        port = node.start(r"^listening on (\d+)$", timeout=30).group(1)  # once it listens
        assert re.fullmatch(r"listening on \d+\n", node.output[0]), node.report()
        yield f"http://127.0.0.1:{port}/hooks/writer"


@pytest.mark.parametrize("secret", [WHSEC, "a plain secret — ünï"])
def test_the_node_receiver_verifies_real_deliveries(node_project: Path, secret: str) -> None:
    with node_receiver(node_project, secret) as url:
        call = webhook_call()
        first = asyncio.run(deliver(url, secret, call))
        assert first.status_code == 200
        assert first.conversation_id == f"conv-{call.invocation_id}"
        again = asyncio.run(deliver(url, secret, webhook_call(attempt=2)))
        assert again.response is not None
        assert json.loads(again.response) == {"status": "duplicate"}
        with capture_server() as capture:
            asyncio.run(deliver(capture.url, secret, webhook_call(idempotency_key="k2")))
            sent = capture.last()
        skip = {"host", "content-length", "accept", "connection"}
        headers = {k: v for k, v in sent.headers.items() if k not in skip}
        forged = httpx.post(url, content=sent.body.replace(b"core", b"evil"), headers=headers)
        assert forged.status_code == 401
        genuine = httpx.post(url, content=sent.body, headers=headers)
        assert genuine.status_code == 200
        assert genuine.json() == {"conversation_id": f"conv-{call.invocation_id}"}
