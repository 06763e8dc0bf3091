"""The embedded database holds secrets and keys: only its owner may read it (SPEC §9)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickwork.storage import migrate
from tickwork.storage.engine import create_engine


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # A umask that lets files be world-readable, as most systems have by default.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_database_and_its_wal_files_are_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tickwork.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:  # WAL files exist while a connection is open
            conn.exec_driver_sql("SELECT count(*) FROM agents").scalar()
            files = sorted(p.name for p in tmp_path.iterdir())
            assert files == ["tickwork.db", "tickwork.db-shm", "tickwork.db-wal"]
            assert {name: oct(mode(tmp_path / name)) for name in files} == {
                name: "0o600" for name in files
            }
    finally:
        engine.dispose()


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "tickwork.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    engine = create_engine(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert mode(path) == 0o640
