"""Identifier rules for tenants, projects, agents, refs and handlers."""

from __future__ import annotations

import re

from tickwork.errors import ValidationError

# Tenants, projects and agents: path segments, so no slashes, quotes or spaces.
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Refs are branch names: slashes allowed between segments (feature/login), like git.
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63}){0,3}$"
HANDLER_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
MAX_NAME = 200
MAX_DESCRIPTION = 2000

_SLUG = re.compile(SLUG_PATTERN)
_REF = re.compile(REF_PATTERN)
_HANDLER = re.compile(HANDLER_PATTERN)


def check_slug(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise ValidationError(
            field,
            "must be 1-64 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return value


def check_ref(value: object, field: str = "ref") -> str:
    if not isinstance(value, str) or not _REF.fullmatch(value) or len(value) > 128:
        raise ValidationError(
            field,
            "must be a branch name: segments of letters, digits, '.', '_' or '-' "
            "separated by '/', at most 128 characters",
        )
    return value


def check_handler_name(value: object, field: str = "target.handler") -> str:
    if not isinstance(value, str) or not _HANDLER.fullmatch(value):
        raise ValidationError(
            field, "must be 1-100 characters of letters, digits, '.', '_', ':' or '-'"
        )
    return value


def check_text(value: object, field: str, limit: int, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > limit:
        raise ValidationError(field, f"is {len(value)} characters long; the limit is {limit}")
    return value
