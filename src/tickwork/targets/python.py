"""The python target: call a handler registered by name in the deployment's own code.

A deployment registers handlers with the :func:`handler` decorator in a module that
``tickwork serve --app module`` imports through :func:`load_app`. The API can only name a
handler; it never imports anything, so what can run is exactly what the deployment's code
registered.

A handler takes one :class:`~tickwork.targets.base.TargetCall` and may be ``async`` (awaited
on the event loop) or plain (run in a worker thread). Its return value becomes the result:
``None`` → an empty result; a ``dict`` may carry a string ``conversation_id`` and a
``usage`` object (``input_tokens``, ``output_tokens``, ``total_tokens``: counted for the
trigger's ``daily_token_budget``); a ``str`` is
stored as it is; anything else is stored as JSON (or its ``repr`` when it is not JSON);
stored text is capped. Raising :class:`tickwork.errors.PermanentError` fails the invocation
at once; any other exception is transient and retried.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any, Final, TypeVar, overload

from tickwork.domain.names import check_handler_name
from tickwork.errors import (
    PermanentError,
    TargetError,
    TickworkError,
    TransientError,
    ValidationError,
)
from tickwork.targets.base import TargetCall, TargetResult

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AppLoadError",
    "Handler",
    "HandlerRegistry",
    "PythonTarget",
    "default_registry",
    "handler",
    "load_app",
]

DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024

Handler = Callable[[TargetCall], Any]
"""A handler: ``(call) -> result`` or ``async (call) -> result``."""

HandlerT = TypeVar("HandlerT", bound=Handler)

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class AppLoadError(TickworkError):
    """The module given to ``tickwork serve --app`` could not be imported."""


class HandlerRegistry:
    """Handlers by name. Registration happens at import time, before serving starts."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, fn: HandlerT) -> HandlerT:
        """Register ``fn`` as ``name`` and return it.

        Registering the same function again is a no-op; registering a different function
        under a taken name raises :class:`~tickwork.errors.ValidationError`, since two
        handlers silently replacing each other would depend on import order.
        """
        check_handler_name(name, "handler")
        if not callable(fn):
            raise TypeError(f"handler {name!r} must be callable, got {type(fn).__name__}")
        existing = self._handlers.get(name)
        if existing is not None and existing is not fn:
            raise ValidationError(
                "handler",
                f"{name!r} is already registered to {_qualified(existing)}; "
                f"cannot also register {_qualified(fn)}",
            )
        self._handlers[name] = fn
        return fn

    def get(self, name: str) -> Handler | None:
        """The handler registered as ``name``, or None."""
        return self._handlers.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers


default_registry = HandlerRegistry()
"""The registry :func:`handler` uses unless given another one."""


@overload
def handler(name: HandlerT, /) -> HandlerT: ...


@overload
def handler(
    name: str | None = None, /, *, registry: HandlerRegistry | None = None
) -> Callable[[HandlerT], HandlerT]: ...


def handler(
    name: str | Handler | None = None, /, *, registry: HandlerRegistry | None = None
) -> Any:
    """Register the decorated function as a python handler.

    ``@handler("daily-report")`` registers under that name; ``@handler()`` or a bare
    ``@handler`` registers under the function's ``__name__``. Returns the function
    unchanged.
    """

    def decorate(fn: HandlerT, explicit: str | None) -> HandlerT:
        chosen = explicit if explicit is not None else _default_name(fn)
        # Looked up at call time so tests can swap the module's default registry.
        target = registry if registry is not None else default_registry
        return target.register(chosen, fn)

    if callable(name):
        return decorate(name, None)

    def decorator(fn: HandlerT) -> HandlerT:
        return decorate(fn, name)

    return decorator


def _default_name(fn: Handler) -> str:
    base = getattr(fn, "__name__", None)
    if not isinstance(base, str):
        raise TypeError("this handler has no __name__; pass a name: @handler('my-handler')")
    return base


def _qualified(fn: Handler) -> str:
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{name}"


class PythonTarget:
    """Call the handler registered as ``name`` in ``registry``.

    On cancellation (timeout or cancel) the awaiting task stops at once and
    ``call.cancelled`` is set. An async handler is cancelled with it; a sync handler keeps
    running in its thread (threads cannot be interrupted) and should poll
    ``call.cancelled`` and return early once it is set.
    """

    def __init__(
        self,
        registry: HandlerRegistry,
        name: str,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self._registry = registry
        self._name = name
        self._max_response_bytes = max_response_bytes

    async def call(self, call: TargetCall) -> TargetResult:
        fn = self._registry.get(self._name)
        if fn is None:
            raise PermanentError(
                f"no python handler named {self._name!r} is registered in this deployment"
            )
        try:
            value = await _invoke(fn, call)
        except asyncio.CancelledError:
            call.cancelled.set()
            raise
        except TargetError:
            raise
        except Exception as exc:
            text = str(exc)
            message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            raise TransientError(message) from exc
        return self._result(value)

    def _result(self, value: object) -> TargetResult:
        if value is None:
            return TargetResult()
        if isinstance(value, TargetResult):
            if value.response is None:
                return value
            return replace(value, response=_cap(value.response, self._max_response_bytes))
        conversation_id: str | None = None
        usage: dict[str, Any] | None = None
        if isinstance(value, dict):
            candidate = value.get("conversation_id")
            if isinstance(candidate, str) and candidate:
                conversation_id = candidate
            # A handler that calls a model may report its tokens, for budgets (SPEC §13).
            reported = value.get("usage")
            if isinstance(reported, dict):
                usage = reported
        text = value if isinstance(value, str) else _to_text(value)
        return TargetResult(
            conversation_id=conversation_id,
            response=_cap(text, self._max_response_bytes),
            usage=usage,
        )


async def _invoke(fn: Handler, call: TargetCall) -> object:
    if _is_async(fn):
        return await fn(call)
    value = await asyncio.to_thread(fn, call)
    if inspect.isawaitable(value):
        # A plain callable that hands back a coroutine (a lambda around an async function).
        value = await value
    return value


def _is_async(fn: Handler) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _to_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        pass
    # The handler succeeded; an unserialisable return value must not turn that into a
    # failure (a retry would repeat its side effects), so keep a description instead.
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _cap(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def load_app(module_name: str) -> ModuleType:
    """Import the deployment's handler module (``tickwork serve --app module``).

    Importing it runs its ``@handler`` decorators. Raises :class:`AppLoadError` with the
    reason when the name is not a module name, the module is not found, or importing it
    raises.
    """
    name = module_name.strip() if isinstance(module_name, str) else ""
    if name.endswith(".py"):
        raise AppLoadError(
            f"--app expects an importable module name, not a file name: "
            f"try {name.removesuffix('.py').replace('/', '.')!r}"
        )
    if not _MODULE_NAME.fullmatch(name):
        raise AppLoadError(
            f"--app expects an importable module name such as 'myapp.handlers', got {module_name!r}"
        )
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name
        if missing is not None and (name == missing or name.startswith(missing + ".")):
            raise AppLoadError(
                f"cannot import app module {name!r}: no module named {missing!r}; "
                "install it or put its directory on PYTHONPATH"
            ) from exc
        raise AppLoadError(
            f"importing app module {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise AppLoadError(
            f"importing app module {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
