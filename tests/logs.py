"""Log lines written through tickwork's formatter into a buffer, for tests to read."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

from tickwork import logging as tlog


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        """Every line so far, each parsed as JSON (fails on a line that is not)."""
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["event"] == event]


@contextlib.contextmanager
def captured_logs(level: str = "INFO") -> Iterator[Captured]:
    """Logging set up in JSON mode into a buffer for the block, then as it was."""
    root = logging.getLogger()
    handlers, root_level, state = list(root.handlers), root.level, dict(tlog._state)
    captured = Captured()
    tlog.configure(level, "json", stream=captured.stream)
    try:
        yield captured
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        tlog._state.update(state)
