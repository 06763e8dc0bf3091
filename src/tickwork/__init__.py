"""tickwork: durable scheduled triggers for AI agents."""

from importlib.metadata import PackageNotFoundError, version

from tickwork.errors import PermanentError, TransientError
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.python import handler

try:
    __version__ = version("tickwork")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "PermanentError",
    "TargetCall",
    "TargetResult",
    "TransientError",
    "__version__",
    "handler",
]
