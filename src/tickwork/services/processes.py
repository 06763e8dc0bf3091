"""The process registry (SPEC §9, Processes): which processes run, of which deployment,
with which roles and python handlers, and whether they are alive.

A process registers once it is fully up and beats its heart every quarter of its
time-to-live; it is *live* until its row expires. A deployment is live while one of its
processes is. Python handler names are checked against the handlers that live worker
processes registered, so an API-only replica knows them too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tickwork.domain.ids import new_id
from tickwork.errors import ValidationError, ValidationErrors
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage.ports import Leadership
from tickwork.storage.records import Process

# Rows of processes that died without deregistering are kept this long for the system
# view ("gone"), then removed by any live process's heartbeat.
FORGET_AFTER = timedelta(hours=1)
# Names listed in an error about an unknown handler.
SHOWN_NAMES = 10


@dataclass(frozen=True)
class ProcessInfo:
    """What a process says about itself in the registry."""

    id: str
    roles: tuple[str, ...]
    handlers: tuple[str, ...]
    host: str
    pid: int
    started_at: datetime


def new_process(ctx: Context, roles: Iterable[str], handlers: Iterable[str]) -> ProcessInfo:
    now = ctx.clock.now()
    return ProcessInfo(
        id=new_id("prc", now),
        roles=tuple(sorted(set(roles))),
        handlers=tuple(sorted(set(handlers))),
        host=socket.gethostname()[:255],
        pid=os.getpid(),
        started_at=now,
    )


def time_to_live(settings: Settings) -> timedelta:
    """How long a process counts as live after its last heartbeat: the scheduler lease,
    so that a dead newest deployment stops holding the others back within the lease."""
    return timedelta(seconds=settings.scheduler_lease_seconds)


def heartbeat_seconds(settings: Settings) -> float:
    """How often a process renews its row: four beats per time-to-live, so one slow beat
    never makes a live process look dead."""
    return settings.scheduler_lease_seconds / 4


def beat(ctx: Context, info: ProcessInfo) -> None:
    """Register the process, or renew its heartbeat (first start of its deployment kept)."""
    now = ctx.clock.now()
    settings = ctx.settings
    with ctx.db.write() as tx:
        tx.upsert_deployment(settings.deployment_id, settings.version, now)
        tx.upsert_process(
            Process(
                id=info.id,
                deployment_id=settings.deployment_id,
                version=settings.version,
                host=info.host,
                pid=info.pid,
                roles=list(info.roles),
                handlers=list(info.handlers),
                started_at=info.started_at,
                heartbeat_at=now,
                expires_at=now + time_to_live(settings),
            )
        )
        tx.delete_processes_expired_before(now - FORGET_AFTER)


def deregister(ctx: Context, process_id: str) -> None:
    """Remove the process from the registry (a graceful stop): it no longer counts for
    its deployment's liveness, nor for the handlers it registered."""
    with ctx.db.write() as tx:
        tx.delete_process(process_id)
    # When it was the last process of the newest deployment, an older one is current now.
    ctx.notifier.leadership_changed()


def live_handlers(tx: Leadership, now: datetime) -> tuple[set[str], int]:
    """The python handler names live worker processes registered, and how many live
    worker processes there are."""
    names: set[str] = set()
    workers = 0
    for process in tx.list_processes(live_at=now):
        if "worker" in process.roles:
            workers += 1
            names.update(process.handlers)
    return names, workers


def require_handlers(
    tx: Leadership, now: datetime, targets: Iterable[tuple[str, dict[str, Any]]]
) -> None:
    """Refuse python targets naming a handler no live worker has registered.

    ``targets`` holds (field, target) pairs, such as ``("target", {...})``; every
    unknown handler is reported under its own field (``target.handler``). With no live
    worker at all, every name is refused: nothing could run it, and the API cannot tell
    a typo from a handler of code not yet started.
    """
    wanted = [
        (f"{where}.handler", str(target["handler"]))
        for where, target in targets
        if target.get("type") == "python"
    ]
    if not wanted:
        return
    names, workers = live_handlers(tx, now)
    errors = []
    for field, name in wanted:
        if name in names:
            continue
        if workers == 0:
            why = (
                f"no live worker has registered a python handler named {name!r}: no "
                "tickwork worker process is running; start one with "
                "`tickwork serve --app MODULE` (the module that registers it) first"
            )
        else:
            shown = sorted(names)[:SHOWN_NAMES]
            known = ", ".join(shown) + (", …" if len(names) > len(shown) else "")
            why = (
                f"no live worker has registered a python handler named {name!r} "
                f"(registered: {known or 'none'})"
            )
        errors.append(ValidationError(field, why))
    if errors:
        raise ValidationErrors(errors)
