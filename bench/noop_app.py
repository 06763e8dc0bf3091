"""A deployment's code for the worker benchmark: one no-op Python handler.

tickwork serve --role worker --app bench.noop_app
"""

from __future__ import annotations

import tickwork


@tickwork.handler("noop")
async def noop(call: tickwork.TargetCall) -> None:
    return None
