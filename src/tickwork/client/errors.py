"""What the client raises: the server's problem answers, and failures to reach it."""

from __future__ import annotations

from typing import Any

from tickwork.errors import TickworkError
from tickwork.wire import Problem, ProblemError

__all__ = ["ApiConnectionError", "ApiError", "ClientError"]


class ClientError(TickworkError):
    """Base of what :class:`tickwork.Client` and :class:`tickwork.AsyncClient` raise."""


class ApiConnectionError(ClientError):
    """The server could not be reached, or stopped answering, after every retry."""


class ApiError(ClientError):
    """The server answered with an error: its ``application/problem+json`` body (RFC 9457).

    ``status``, ``type``, ``title``, ``detail`` and ``errors`` (one per invalid field,
    each with ``field`` and ``message``) are the problem's members; the extension members
    tickwork sends are attributes too (``required_scope`` and ``key_scope`` on a 403,
    ``quota``, ``limit``, ``used`` and ``requested`` on a quota's 429), and ``body`` is the
    whole answer as sent, members unknown to this version included. An answer that is not
    problem+json (a proxy's error page) is reported with ``type`` ``about:blank``, the
    status's ``title`` and the start of its text as ``detail``.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.problem = problem
        self.method = method
        self.url = url
        self.body: dict[str, Any] = body if body is not None else problem.model_dump()
        self.retry_after = retry_after
        super().__init__(self.summary)

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str | None:
        return self.problem.detail

    @property
    def errors(self) -> list[ProblemError]:
        return list(self.problem.errors or [])

    @property
    def required_scope(self) -> str | None:
        return self.problem.required_scope

    @property
    def key_scope(self) -> str | None:
        return self.problem.key_scope

    @property
    def quota(self) -> str | None:
        return self.problem.quota

    @property
    def limit(self) -> float | None:
        return self.problem.limit

    @property
    def used(self) -> float | None:
        return self.problem.used

    @property
    def requested(self) -> float | None:
        return self.problem.requested

    @property
    def summary(self) -> str:
        """One line: ``404 Not found: trigger 'trg_…' not found``."""
        head = f"{self.status} {self.title}"
        return f"{head}: {self.detail}" if self.detail else head

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.type!r}, {self.detail!r})"
