"""tickwork: durable scheduled triggers for AI agents."""

from tickwork.errors import PermanentError, TransientError
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.python import handler

__all__ = ["PermanentError", "TargetCall", "TargetResult", "TransientError", "handler"]
