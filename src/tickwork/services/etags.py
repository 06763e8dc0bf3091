"""Entity tags for optimistic concurrency (SPEC §10): ``GET`` of a trigger, an agent or
a definition answers an ``ETag``; ``PATCH``, ``PUT`` and ``DELETE`` sent with
``If-Match`` go ahead only while it still holds (412 otherwise).

A tag names what a client can change, not what tickwork changes as it runs: a trigger's
tag is a digest of its settings (the scheduler moving ``next_run_at`` on, or a run
ending, leaves it as it is), an agent's is a digest of what the API shows of it and
when it was last written (its secret changes the tag through ``updated_at``, never
through a digest of the secret), and a definition's is its ref's revision (every write
to the ref raises it) together with when the ref was created (a ref deleted and pushed
again starts over at revision 1).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tickwork.domain.target_spec import public_target
from tickwork.domain.trigger_spec import EDITABLE
from tickwork.errors import PreconditionFailed
from tickwork.storage.records import Agent, Project, Ref, Trigger


def _tag(kind: str, document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return f'"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


def trigger_etag(trigger: Trigger) -> str:
    settings = {key: getattr(trigger, key) for key in EDITABLE}
    # Fields added later count only when set, so an upgrade keeps the tags clients hold
    # and the tags of triggers that do not use them stay what they were.
    for added in ("pause_after_failures", "rrule", "rrule_start", "calendar"):
        if settings[added] is None:
            del settings[added]
    return _tag("t", [trigger.id, trigger.ref, trigger.agent_id, settings])


def agent_etag(agent: Agent) -> str:
    shown = [
        agent.ref,
        agent.id,
        agent.name,
        public_target(agent.target),
        agent.max_concurrency,
        agent.created_at.isoformat(),
        agent.updated_at.isoformat(),
    ]
    return _tag("a", shown)


def definition_etag(ref: Ref | None) -> str | None:
    if ref is None:
        return None
    return _tag("d", [ref.name, ref.created_at.isoformat(), ref.revision])


def matches(if_match: str, current: str | None) -> bool:
    """Whether an ``If-Match`` value holds for the current tag (None: the resource does
    not exist). ``*`` matches any existing resource; otherwise a comma-separated list of
    tags compared strongly (RFC 9110 §13.1.1), so a weak ``W/"…"`` tag never matches."""
    if current is None:
        return False
    wanted = [part.strip() for part in if_match.split(",")]
    return "*" in wanted or current in wanted


def require_match(if_match: str | None, current: str | None, what: str) -> None:
    """Raise :class:`PreconditionFailed` (412) unless ``if_match`` is absent or holds."""
    if if_match is None or matches(if_match, current):
        return
    if current is None:
        raise PreconditionFailed(
            f"If-Match names a version of {what}, which does not exist; leave If-Match out "
            "to create it"
        )
    raise PreconditionFailed(
        f"{what} has changed since the version If-Match names ({if_match}); it is now "
        f"{current}: read it again, apply your change to what it is now, and send that "
        "with the new ETag",
        etag=current,
    )


def retention_etag(project: Project) -> str:
    """The version of a project's retention settings (its overrides)."""
    shown = [project.id, project.history_retention_days, project.history_max_per_trigger]
    return _tag("r", shown)
