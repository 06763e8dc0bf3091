"""What every use-case needs: the database, the clock, settings, and who to wake."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tickwork.clock import Clock
from tickwork.services.auth_failures import AuthFailures
from tickwork.settings import Settings
from tickwork.storage.sql import Database


class Notifier(Protocol):
    """Wakes the scheduler and workers when the data they wait on changes.

    Calls may come from any thread and must not block.
    """

    def triggers_changed(self) -> None: ...

    def invocations_ready(self) -> None: ...

    def invocations_cancelled(self, ids: Iterable[str]) -> None: ...

    def leadership_changed(self) -> None:
        """The scheduler lease was given up or a process stopped: standbys and drained
        deployments look again at once."""


class NullNotifier:
    def triggers_changed(self) -> None:
        pass

    def invocations_ready(self) -> None:
        pass

    def invocations_cancelled(self, ids: Iterable[str]) -> None:
        pass

    def leadership_changed(self) -> None:
        pass


@dataclass
class Context:
    db: Database
    clock: Clock
    settings: Settings
    notifier: Notifier = field(default_factory=NullNotifier)
    # Per process, built from the settings; a copy made with dataclasses.replace gets
    # its own, empty one.
    auth_failures: AuthFailures = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.auth_failures = AuthFailures(
            self.clock,
            s.auth_failure_limit,
            s.auth_failure_window_seconds,
            s.auth_failure_max_clients,
        )
