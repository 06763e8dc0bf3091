"""Schedules declared in code: ``@tickwork.schedule(...)`` on a registered handler.

``tickwork sync --app MODULE --project P`` imports the deployment's module, which runs its
``@tickwork.handler`` and ``@tickwork.schedule`` decorators, and pushes the definition
they describe (:func:`build_definition`) to the ref with ``PUT /definition``: one agent
per registered handler (a python target naming it), with the triggers its schedules
declare. The ref then belongs to the code: agents and triggers the code no longer
declares are deleted by the next sync.

The decorators may be stacked in either order; each returns the function unchanged.
A schedule's fields are checked against the API's own model
(:class:`tickwork.wire.TriggerCreate`) when the module is imported, so a misspelt field
or a negative retry count fails at import, naming the decorator's line; what only the
server can judge (the cron expression, the time zone) fails at sync, naming it too.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticValidationError

from tickwork.domain.names import SLUG_PATTERN
from tickwork.errors import ValidationError
from tickwork.targets import python
from tickwork.targets.python import Handler, HandlerRegistry
from tickwork.wire import TriggerCreate

__all__ = [
    "AppDefinition",
    "Declared",
    "ScheduleRegistry",
    "agent_id_for",
    "build_definition",
    "default_schedules",
    "schedule",
]

HandlerT = TypeVar("HandlerT", bound=Handler)
_SLUG = re.compile(SLUG_PATTERN)
_NOT_IN_SLUG = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Declared:
    """One ``@schedule``: the function it is on, the trigger's fields as JSON, and where
    the decorator is (``path:line``)."""

    fn: Handler
    trigger: dict[str, Any]
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class ScheduleRegistry:
    """The schedules declared on functions, in declaration order."""

    def __init__(self) -> None:
        self._declared: list[Declared] = []

    def add(self, declared: Declared) -> None:
        """Record ``declared``; a second schedule of the same name on the same function
        raises :class:`~tickwork.errors.ValidationError` (names are unique per agent)."""
        name = declared.trigger["name"]
        for other in self._declared:
            if other.fn is declared.fn and other.trigger["name"] == name:
                raise ValidationError(
                    "schedule",
                    f"{declared.where}: {_qualified(declared.fn)} already has a schedule "
                    f"named {name!r} ({other.where}); give each schedule a name= of its own",
                )
        self._declared.append(declared)

    def of(self, fn: Handler) -> list[Declared]:
        """The schedules on ``fn``, in the order of their lines in the source."""
        return sorted((d for d in self._declared if d.fn is fn), key=lambda d: (d.path, d.line))

    def functions(self) -> list[Handler]:
        seen: list[Handler] = []
        for declared in self._declared:
            if not any(fn is declared.fn for fn in seen):
                seen.append(declared.fn)
        return seen


default_schedules = ScheduleRegistry()
"""The registry :func:`schedule` uses unless given another one."""


def schedule(
    cron_expression: str | None = None,
    /,
    *,
    run_at: datetime | str | None = None,
    timezone: str | None = None,
    name: str | None = None,
    description: str | None = None,
    payload: dict[str, Any] | None = None,
    message_template: str | None = None,
    enabled: bool | None = None,
    max_retries: int | None = None,
    retry_delay_seconds: int | None = None,
    timeout_seconds: int | None = None,
    catchup: str | None = None,
    catchup_window_seconds: int | None = None,
    overlap: str | None = None,
    jitter_seconds: int | None = None,
    registry: ScheduleRegistry | None = None,
    **fields: Any,
) -> Callable[[HandlerT], HandlerT]:
    """Declare a scheduled trigger of the decorated handler.

    ``cron_expression`` (5 fields, 6 with seconds, or an ``@alias``) or ``run_at`` (an
    aware instant) says when; ``timezone`` is an IANA zone (default UTC); ``name`` is the
    trigger's name, unique per handler (default: the function's name). The other
    arguments are the trigger fields of the API (``payload``, ``message_template``,
    ``max_retries``, ``catchup``, ``overlap``, …, and any further field of
    :class:`tickwork.wire.TriggerCreate` as a keyword); those left out take the API's
    defaults.
    """
    given = {
        "cron_expression": cron_expression,
        "run_at": run_at,
        "timezone": timezone,
        "description": description,
        "payload": payload,
        "message_template": message_template,
        "enabled": enabled,
        "max_retries": max_retries,
        "retry_delay_seconds": retry_delay_seconds,
        "timeout_seconds": timeout_seconds,
        "catchup": catchup,
        "catchup_window_seconds": catchup_window_seconds,
        "overlap": overlap,
        "jitter_seconds": jitter_seconds,
        **fields,
    }
    caller = inspect.currentframe()
    frame = caller.f_back if caller is not None else None
    path = frame.f_code.co_filename if frame is not None else "?"
    line = frame.f_lineno if frame is not None else 0
    where = f"{path}:{line}"

    def decorate(fn: HandlerT) -> HandlerT:
        if not callable(fn):
            raise TypeError(f"{where}: @schedule must decorate a function, not {fn!r}")
        chosen = name if name is not None else getattr(fn, "__name__", None)
        if not isinstance(chosen, str):
            raise TypeError(f"{where}: this function has no __name__; pass name=...")
        trigger = _checked({"name": chosen, **given}, where)
        target = registry if registry is not None else default_schedules
        target.add(Declared(fn, trigger, path, line))
        return fn

    return decorate


def _checked(fields: dict[str, Any], where: str) -> dict[str, Any]:
    """The trigger's fields as the API takes them, after the API's own model checked
    them; fields left as None are left out (they take the API's defaults)."""
    try:
        model = TriggerCreate.model_validate({k: v for k, v in fields.items() if v is not None})
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first.get("loc", ())) or "schedule"
        message = first.get("msg", "invalid")
        if first.get("type") == "extra_forbidden":
            message = "is not a field of a scheduled trigger"
        raise ValidationError(loc, f"{message} (@schedule at {where})") from None
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def agent_id_for(handler_name: str) -> str:
    """The agent id of a handler: its name where that is a valid id, else the name with
    every character an id cannot hold (``:``) made ``-`` and leading punctuation
    dropped, at most 64 characters (``reports.daily:v2`` → ``reports.daily-v2``)."""
    if _SLUG.fullmatch(handler_name):
        return handler_name
    candidate = _NOT_IN_SLUG.sub("-", handler_name).lstrip("._-")[:64]
    if not _SLUG.fullmatch(candidate):
        raise ValidationError(
            "handler",
            f"{handler_name!r} makes no agent id: a handler name needs a letter or digit",
        )
    return candidate


@dataclass(frozen=True)
class AppDefinition:
    """What :func:`build_definition` found: the body of ``PUT /definition``, and where
    each agent and trigger is declared, by its place in the body (``agents[0]``,
    ``agents[0].triggers[1]``), for errors the server reports about them."""

    definition: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, field_path: str) -> str | None:
        """Where the element a server error names (``agents[0].triggers[1].timezone``)
        is declared: the innermost known element that contains it."""
        found = [
            prefix
            for prefix in self.sources
            if field_path == prefix or field_path.startswith((prefix + ".", prefix + "["))
        ]
        return self.sources[max(found, key=len)] if found else None


def build_definition(
    handlers: HandlerRegistry | None = None, schedules: ScheduleRegistry | None = None
) -> AppDefinition:
    """The definition the registered handlers and their schedules describe: one agent
    per handler, in the order of their names, each with a python target naming the
    handler and the triggers its schedules declare (in source order).

    Raises :class:`~tickwork.errors.ValidationError` for a schedule on a function that
    is not a registered handler (or is registered under several names), and for two
    handlers whose names make the same agent id.
    """
    handlers = handlers if handlers is not None else python.default_registry
    schedules = schedules if schedules is not None else default_schedules
    names_of: dict[int, list[str]] = {}
    for handler_name in handlers.names():
        fn = handlers.get(handler_name)
        names_of.setdefault(id(fn), []).append(handler_name)
    for fn in schedules.functions():
        registered = names_of.get(id(fn), [])
        where = schedules.of(fn)[0].where
        if not registered:
            raise ValidationError(
                "schedule",
                f"{where}: {_qualified(fn)} has a schedule but is not a registered handler: "
                "add @tickwork.handler(...) to it",
            )
        if len(registered) > 1:
            raise ValidationError(
                "schedule",
                f"{where}: {_qualified(fn)} is registered as several handlers "
                f"({', '.join(registered)}): its schedules would belong to each",
            )
    agents: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    taken: dict[str, str] = {}
    for handler_name in handlers.names():
        fn = handlers.get(handler_name)
        assert fn is not None
        agent = agent_id_for(handler_name)
        if agent in taken:
            raise ValidationError(
                "handler",
                f"handlers {taken[agent]!r} and {handler_name!r} would both be agent "
                f"{agent!r}: rename one of them",
            )
        taken[agent] = handler_name
        index = len(agents)
        sources[f"agents[{index}]"] = f"{_source(fn)} (handler {handler_name!r})"
        declared = schedules.of(fn)
        for position, one in enumerate(declared):
            sources[f"agents[{index}].triggers[{position}]"] = (
                f"{one.where} (schedule {one.trigger['name']!r})"
            )
        agents.append(
            {
                "id": agent,
                "target": {"type": "python", "handler": handler_name},
                "triggers": [dict(one.trigger) for one in declared],
            }
        )
    return AppDefinition({"agents": agents}, sources)


def _qualified(fn: Handler) -> str:
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{name}"


def _source(fn: Handler) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return _qualified(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"
