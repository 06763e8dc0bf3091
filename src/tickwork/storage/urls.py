"""Database URLs as people see them and as libpq takes them.

SQLAlchemy is imported inside the functions: the command line reads settings (and masks
their URL) without loading the database layer.
"""

from __future__ import annotations


def safe_url(url: str) -> str:
    """A database URL with its password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq understands it (no driver suffix)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)
