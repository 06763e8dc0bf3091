"""Targets: where an invocation is delivered (a webhook or a registered Python handler)."""

from tickwork.targets.base import Target, TargetCall, TargetResult
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import egress_client
from tickwork.targets.python import (
    AppLoadError,
    HandlerRegistry,
    PythonTarget,
    default_registry,
    handler,
    load_app,
)
from tickwork.targets.webhook import (
    WebhookTarget,
    is_private_address,
    signature_header,
    validate_webhook_url,
    verify_signature,
)

__all__ = [
    "AppLoadError",
    "EgressPolicy",
    "HandlerRegistry",
    "PythonTarget",
    "Target",
    "TargetCall",
    "TargetResult",
    "WebhookTarget",
    "default_registry",
    "egress_client",
    "handler",
    "is_private_address",
    "load_app",
    "signature_header",
    "validate_webhook_url",
    "verify_signature",
]
