"""Answers read from records: ``Model.model_validate(record)`` on a wire model configured
``FROM_RECORD`` takes each field from the record's attribute of that name (or of the one
its ``validation_alias`` names: ``tenant`` from ``tenant_id``). What an answer derives is
given beside the record with :class:`Overlay`, in the one function that builds it."""

from __future__ import annotations

from typing import Any


class Overlay:
    """A record as an answer reads it, with ``values`` in place of its own attributes of
    those names or beside them (``Overlay(trigger, health="late")``)."""

    __slots__ = ("_record", "_values")

    def __init__(self, record: object, **values: Any) -> None:
        self._record = record
        self._values = values

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return getattr(self._record, name)
