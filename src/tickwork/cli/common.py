"""What the commands that open the database share: the ``--database-url`` option, the
settings with logging set up from them, the one-line failure, the context.

Imports of the server's modules (settings, logging, the store) happen inside the
functions, so that ``tickwork --version`` and ``--help`` load none of them
(tests/unit/cli/test_startup.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tickwork.services.context import Context
    from tickwork.settings import Settings

__all__ = ["EXIT_INVALID", "DatabaseOpt", "fail", "open_ctx", "read_settings"]

EXIT_INVALID = 2

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar="TICKWORK_DATABASE_URL",
        show_envvar=True,
        help="Database: sqlite:///path/to/file.db or postgresql://user@host:5432/db "
        "(default: sqlite:///./tickwork.db).",
        show_default=False,
    ),
]


def fail(message: str) -> typer.Exit:
    """One line saying why the command stops: a log line in JSON mode (every line on
    stderr is JSON then), else ``error: ...``."""
    from tickwork import logging as tlog

    if tlog.json_mode():
        if not tlog.is_configured():  # stopped before the settings were read
            tlog.configure(fmt="json")
        tlog.get_logger("tickwork.cli").error(message)
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_INVALID)


def read_settings(*, serving: bool = False, **overrides: object) -> Settings:
    """The settings, with logging set up from them: at their level for ``serve``; the
    one-shot commands (whose output people read) log at WARNING unless asked for DEBUG."""
    from tickwork import logging as tlog
    from tickwork.errors import ValidationError
    from tickwork.settings import Settings

    try:
        settings = Settings.from_env(**overrides)
    except ValidationError as exc:
        raise fail(str(exc)) from None
    level = settings.log_level
    if not serving and level == "INFO":
        level = "WARNING"
    tlog.configure(level, settings.log_format)
    return settings


@contextlib.contextmanager
def open_ctx(settings: Settings, *, upgrade: bool) -> Iterator[Context]:
    """A context for the one-shot commands (see :func:`tickwork.assembly.open_context`),
    or stop saying why the database cannot be opened. Its connections are closed when
    the block ends, however it ends."""
    from tickwork.assembly import open_context
    from tickwork.settings import safe_url

    try:
        ctx = open_context(settings, upgrade=upgrade)
    except Exception as exc:
        raise fail(f"cannot open the database {safe_url(settings.database_url)}: {exc}") from None
    try:
        yield ctx
    finally:
        ctx.db.dispose()
