"""A trigger's policies (SPEC §4): what a pass does with slots it missed, and with a
slot due while earlier invocations are still active. The rules themselves are in
:mod:`tickwork.domain.catchup`; the API's document spells these names out
(:mod:`tickwork.wire.triggers` checks that its literals are these)."""

from __future__ import annotations

from enum import StrEnum


class CatchupPolicy(StrEnum):
    """Missed slots: run the latest, run them all, or run none."""

    LATEST = "latest"
    ALL = "all"
    NONE = "none"


class OverlapPolicy(StrEnum):
    """A slot due while invocations are active: run it anyway, skip it, let one wait,
    or cancel the active ones."""

    ALLOW = "allow"
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    CANCEL_PREVIOUS = "cancel_previous"


class Conversation(StrEnum):
    """Whether each run starts a fresh conversation or continues the previous run's
    (SPEC §13)."""

    NEW = "new"
    CONTINUE = "continue"


CATCHUP_POLICIES: tuple[str, ...] = tuple(CatchupPolicy)
CONVERSATIONS: tuple[str, ...] = tuple(Conversation)
OVERLAP_POLICIES: tuple[str, ...] = tuple(OverlapPolicy)
