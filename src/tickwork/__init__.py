"""tickwork: durable scheduled triggers for AI agents.

The public names are loaded on first use, so ``import tickwork`` (and the client,
``import tickwork.client``) costs next to nothing: a script that only calls the API
never imports the targets, the server or their dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tickwork.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from tickwork.client import ApiConnectionError, ApiError, AsyncClient, Client
    from tickwork.targets.base import TargetCall, TargetResult
    from tickwork.targets.python import handler
    from tickwork.targets.schedules import schedule

    __version__: str

# Each lazily loaded name and the module that defines it.
_LAZY = {
    "ApiConnectionError": "tickwork.client",
    "ApiError": "tickwork.client",
    "AsyncClient": "tickwork.client",
    "Client": "tickwork.client",
    "TargetCall": "tickwork.targets.base",
    "TargetResult": "tickwork.targets.base",
    "handler": "tickwork.targets.python",
    "schedule": "tickwork.targets.schedules",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value: Any = version("tickwork")
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0+unknown"
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'tickwork' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ApiConnectionError",
    "ApiError",
    "AsyncClient",
    "Client",
    "PermanentError",
    "TargetCall",
    "TargetResult",
    "TransientError",
    "__version__",
    "handler",
    "schedule",
]
