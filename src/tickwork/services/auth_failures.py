"""Failed authentication, counted per client address (SPEC §9).

After ``limit`` failed attempts (a wrong API key, admin token or deploy secret) from one
address within ``window`` seconds of its first failure, that address is refused
(HTTP 429 with ``Retry-After``) until the window is over, whatever credential it sends,
so guessing cannot go on at request speed. Successful requests are never counted.

IPv6 clients are counted per /64 network: one host usually holds a whole /64, and
counting each of its 2^64 addresses apart would let it rotate through them.

Memory is bounded: at most ``max_clients`` addresses are remembered, in a TTL cache
(cachetools) that drops an address when its window has ended and, when full, the
address least recently seen, so an attacker rotating addresses cannot grow it. (The
``limits`` package keeps every key until it expires, without a cap, and reads the wall
clock itself; this cache runs on tickwork's injected clock, so tests move time.)

The counts live in the process: behind a load balancer each replica counts its own.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from dataclasses import dataclass

from cachetools import TTLCache

from tickwork.clock import Clock


@dataclass(frozen=True)
class _Window:
    started: float  # on the clock's monotonic scale
    failures: int


def client_key(address: str | None) -> str:
    """What failures are counted under: the IPv4 address, the IPv6 /64, or the text the
    server gave when it is not an address (a Unix socket, a test client)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AuthFailures:
    """Thread-safe: the API's dependencies run in a thread pool."""

    def __init__(self, clock: Clock, limit: int, window_seconds: float, max_clients: int) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: TTLCache[str, _Window] = TTLCache(
            maxsize=max_clients, ttl=window_seconds, timer=clock.monotonic
        )

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        if self.limit <= 0:
            return None
        now = self._clock.monotonic()
        with self._lock:
            window = self._windows.get(client_key(address))
        if window is None or window.failures < self.limit:
            return None
        remaining = window.started + self.window - now
        return max(1, math.ceil(remaining)) if remaining > 0 else None

    def failed(self, address: str | None) -> None:
        """Count one failed attempt from ``address``."""
        if self.limit <= 0:
            return
        key = client_key(address)
        now = self._clock.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.started + self.window:
                window = _Window(now, 0)
            self._windows[key] = _Window(window.started, window.failures + 1)

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)
