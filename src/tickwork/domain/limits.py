"""Size limits that the wire models declare and the services enforce (SPEC §9).

Kept in the domain so the dependency-light wire models (:mod:`tickwork.wire`), which the
client library shares with the API, can name them without importing the services.
"""

from __future__ import annotations

from typing import Final

MAX_TEMPLATE_CHARS: Final = 64 * 1024
"""A trigger's message template, in characters (above: 413)."""
MAX_AGENTS: Final = 1000
"""Agents in one pushed definition."""
MAX_TRIGGERS_PER_AGENT: Final = 1000
"""Triggers of one agent in one pushed definition."""

# A trigger's run_as (SPEC §13): printable ASCII, since it travels in an HTTP header too,
# without spaces at either end.
RUN_AS_PATTERN = r"^[!-~](?:[ -~]{0,254}[!-~])?$"
# A UTC day in a query (YYYY-MM-DD).
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
