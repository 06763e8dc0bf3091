"""Fair share of a worker's capacity across tenants and agents (SPEC §9).

A pure decision: given the invocations that could start now (oldest first), what this
worker already runs per tenant, and how much room capped agents have left, choose what to
start. Free slots go to the tenant with the fewest attempts running; no tenant runs more
than its cap at once, so one tenant's slow or numerous invocations never hold the whole
pool; within a tenant, the oldest invocation goes first.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["choose", "default_tenant_cap"]

AgentKey = tuple[str, str, str, str]


class Claimable(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def agent_key(self) -> AgentKey: ...


def default_tenant_cap(pool: int) -> int:
    """The pool minus a reserve of a fifth of it (rounded up), and at least one slot: a
    busy tenant leaves room for the others, a single tenant keeps most of the pool."""
    if pool <= 1:
        return 1
    return max(1, pool - math.ceil(pool / 5))


def choose(
    candidates: Sequence[Claimable],
    running: Mapping[str, int],
    tenant_cap: int,
    limit: int,
    agent_room: Mapping[AgentKey, int] | None = None,
) -> list[str]:
    """The ids to start, at most ``limit``, in the order they were chosen.

    ``candidates`` come oldest first; ``running`` counts this worker's attempts per
    tenant; ``agent_room`` says how many more attempts each capped agent may run
    (agents not in it have no cap).
    """
    queues: dict[str, list[Claimable]] = {}
    for candidate in candidates:
        queues.setdefault(candidate.tenant_id, []).append(candidate)
    room = dict(agent_room or {})
    load = {tenant: running.get(tenant, 0) for tenant in queues}
    # (attempts running, position of the tenant's oldest candidate, tenant)
    heap = [(load[tenant], index, tenant) for index, tenant in enumerate(queues)]
    heapq.heapify(heap)
    positions = dict.fromkeys(queues, 0)
    chosen: list[str] = []
    while heap and len(chosen) < limit:
        busy, order, tenant = heapq.heappop(heap)
        if busy >= tenant_cap:
            continue
        queue = queues[tenant]
        position = positions[tenant]
        while position < len(queue) and room.get(queue[position].agent_key, 1) <= 0:
            position += 1  # that agent is at its cap
        if position >= len(queue):
            continue
        candidate = queue[position]
        positions[tenant] = position + 1
        if candidate.agent_key in room:
            room[candidate.agent_key] -= 1
        chosen.append(candidate.id)
        heapq.heappush(heap, (busy + 1, order, tenant))
    return chosen
