"""A webhook receiver that does nothing, as fast as uvicorn allows (for benchmarks).

Every ``POST`` is answered ``200 {}``. It counts them and, for tickwork's calls, notes
how late each arrived (arrival − ``X-Tickwork-Scheduled-For``), and how many
connections the calls came on (each client address and port is one connection):
``GET /stats`` returns ``{"count": n, "connections": c, "lags": [seconds, ...]}`` and
``GET /reset`` starts over.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_SCHEDULED_FOR = b"x-tickwork-scheduled-for"
_state: dict[str, Any] = {"count": 0, "lags": []}
_peers: set[Any] = set()


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    body = b"{}"
    if scope["method"] == "POST":
        arrived = time.time()
        _state["count"] += 1
        _peers.add(scope.get("client"))
        for name, value in scope["headers"]:
            if name == _SCHEDULED_FOR:
                scheduled = datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
                _state["lags"].append(arrived - scheduled.timestamp())
                break
    elif scope["path"] == "/stats":
        body = json.dumps({**_state, "connections": len(_peers)}).encode()
    elif scope["path"] == "/reset":
        _state["count"], _state["lags"] = 0, []
        _peers.clear()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
