"""The database errors the layers above the store may name.

Only :mod:`tickwork.storage` imports SQLAlchemy (an import-linter contract): the API's
problem handlers and the command line catch the store's errors under these names.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from tickwork.storage.sql.base import gave_way, is_outage

# Any error the database or its driver raised.
StoreError = SQLAlchemyError
# A constraint refused a write (a unique name taken by a concurrent request, ...).
ConstraintViolation = IntegrityError
# The database could not be reached or refused the operation (locked, gone, ...).
StoreUnavailable = OperationalError

__all__ = ["ConstraintViolation", "StoreError", "StoreUnavailable", "gave_way", "is_outage"]
