"""Target secrets at rest (SPEC §9 "Secrets at rest").

A webhook secret is stored in the agent's target document in one of three forms:

- ``"plain text"``: no ``TICKWORK_SECRET_KEY`` was set when it was written;
- ``{"fernet": "<token>"}``: encrypted with the first key of ``TICKWORK_SECRET_KEY``
  (Fernet: AES-128-CBC with HMAC-SHA256, from ``cryptography``; every key of the list
  decrypts, so keys rotate without downtime);
- ``{"env": "TICKWORK_TARGET_SECRET_…"}``: a reference, read from the worker's
  environment at call time; nothing secret is stored.

Clients can write a string or an ``{"env": …}`` reference, never the ``fernet`` form, so
the stored form is never ambiguous. Writing a string that equals the secret already
stored keeps what is stored (compared after decryption: a new ciphertext each time would
make every unchanged push a change). :func:`rotate` re-encrypts every stored secret with
the first key and encrypts those still in plain text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tickwork.domain.target_spec import KEEP_SECRET, env_secret_name
from tickwork.errors import PermanentError, ValidationError
from tickwork.services.context import Context
from tickwork.storage.records import Agent

__all__ = ["RotationReport", "generate_key", "reveal", "rotate", "seal"]

KEY_ENV = "TICKWORK_SECRET_KEY"
_PAGE = 200


def generate_key() -> str:
    """A new random key for ``TICKWORK_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> MultiFernet | None:
    return MultiFernet([Fernet(key) for key in keys]) if keys else None


def _plain(stored: object, keys: tuple[str, ...]) -> str | None:
    """The plaintext of a stored string or ``fernet`` secret, None when it has none or
    it cannot be decrypted with ``keys``."""
    if isinstance(stored, str):
        return stored
    keyring = _keyring(keys)
    if keyring is None or not isinstance(stored, dict) or "fernet" not in stored:
        return None
    try:
        return keyring.decrypt(str(stored["fernet"]).encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        return None


def seal(
    ctx: Context, target: dict[str, Any], before: Agent | None, field: str = "target"
) -> dict[str, Any]:
    """``target`` (as normalised from a client) in the form to store, given the agent
    stored so far (``before``, or None): a string secret is encrypted when a key is
    set, unless it equals the secret already stored, which is then kept as it is;
    ``{"keep": true}`` keeps the stored one (422 at ``field.secret`` if there is none)."""
    secret = target.get("secret")
    stored = before.target.get("secret") if before is not None else None
    if secret == KEEP_SECRET:
        if before is None or before.target.get("type") != target.get("type") or not stored:
            raise ValidationError(
                f"{field}.secret",
                '{"keep": true} keeps the secret the agent has, and this agent has none '
                "stored: give the secret itself, or an env reference",
            )
        return {**target, "secret": stored}
    if not isinstance(secret, str):
        return target  # no secret, or an env reference: nothing secret to store
    keys = ctx.settings.secret_keys
    if stored is not None and _plain(stored, keys) == secret:
        return {**target, "secret": stored}
    keyring = _keyring(keys)
    if keyring is None:
        return target
    token = keyring.encrypt(secret.encode("utf-8")).decode("ascii")
    return {**target, "secret": {"fernet": token}}


def reveal(
    stored: object, keys: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> str | None:
    """The secret to sign with, from its stored form, at call time.

    Raises :class:`PermanentError` when it cannot be had: an encrypted secret with no
    key that decrypts it, or a reference to a variable that is not set (or empty).
    """
    if stored is None or isinstance(stored, str):
        return stored
    name = env_secret_name(stored)
    if name is not None:
        value = (os.environ if environ is None else environ).get(name)
        if not value:
            raise PermanentError(
                f"the agent's secret refers to the environment variable {name}, "
                "which is not set (or is empty) on this worker"
            )
        return value
    if isinstance(stored, dict) and "fernet" in stored:
        if not keys:
            raise PermanentError(
                f"the agent's secret is encrypted but {KEY_ENV} is not set on this worker"
            )
        plain = _plain(stored, keys)
        if plain is None:
            raise PermanentError(
                f"the agent's secret is encrypted with a key that is not in {KEY_ENV}; "
                "add the key it was written with"
            )
        return plain
    raise PermanentError("the agent's secret is stored in a form this version cannot read")


@dataclass
class RotationReport:
    """What :func:`rotate` did, agent by agent."""

    re_encrypted: int = 0
    encrypted: int = 0  # were plain text
    skipped: int = 0  # no secret, or an env reference
    # Agents whose secret no key decrypts, as "tenant/project/ref/agent".
    undecryptable: list[str] = field(default_factory=list)


def rotate(ctx: Context) -> RotationReport:
    """Re-encrypt every stored secret with the first key of ``TICKWORK_SECRET_KEY`` and
    encrypt those stored in plain text; one short transaction per agent. Revisions and
    ``updated_at`` stay as they are: the secrets do not change, only how they are stored.
    Raises ValueError when no key is set."""
    keyring = _keyring(ctx.settings.secret_keys)
    if keyring is None:
        raise ValueError(f"{KEY_ENV} is not set: there is no key to encrypt with")
    report = RotationReport()
    after: tuple[str, str, str, str] | None = None
    while True:
        with ctx.db.read() as tx:
            page = tx.agents_after(after, _PAGE)
        for agent in page:
            _rotate_one(ctx, keyring, agent, report)
        if len(page) < _PAGE:
            return report
        last = page[-1]
        after = (last.tenant_id, last.project_id, last.ref, last.id)


def _rotate_one(ctx: Context, keyring: MultiFernet, agent: Agent, report: RotationReport) -> None:
    stored = agent.target.get("secret")
    if isinstance(stored, str):
        token = keyring.encrypt(stored.encode("utf-8"))
        counter = "encrypted"
    elif isinstance(stored, dict) and "fernet" in stored:
        try:
            token = keyring.rotate(str(stored["fernet"]).encode("ascii"))
        except InvalidToken:
            where = f"{agent.tenant_id}/{agent.project_id}/{agent.ref}/{agent.id}"
            report.undecryptable.append(where)
            return
        counter = "re_encrypted"
    else:
        report.skipped += 1
        return
    new_target = {**agent.target, "secret": {"fernet": token.decode("ascii")}}
    key = (agent.tenant_id, agent.project_id, agent.ref, agent.id)
    with ctx.db.write() as tx:
        # Written only if nobody changed the agent meanwhile; a newer write was sealed
        # with the current keys already.
        replaced = tx.replace_agent_target(*key, agent.target, new_target)
    if replaced:
        setattr(report, counter, getattr(report, counter) + 1)
    else:
        report.skipped += 1
