from __future__ import annotations

import os

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

hypothesis_settings.register_profile(
    "default",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "thorough",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# -- databases ------------------------------------------------------------------------
# TICKWORK_TEST_DATABASE is "sqlite" (default) or a PostgreSQL URL. On PostgreSQL the
# session creates one throw-away database, migrates it once and empties it before each
# test; on SQLite each test gets a copy of a migrated template file.

import secrets  # noqa: E402
import shutil  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tests.pools import watched  # noqa: E402
from tickwork.services.context import Context  # noqa: E402
from tickwork.settings import Settings  # noqa: E402
from tickwork.storage import migrate, tables  # noqa: E402
from tickwork.storage.engine import create_engine, normalise_url  # noqa: E402
from tickwork.storage.sql import Database  # noqa: E402
from tickwork.testing import FakeClock  # noqa: E402

TEST_DATABASE = os.environ.get("TICKWORK_TEST_DATABASE", "sqlite")
ON_POSTGRES = TEST_DATABASE.startswith("postgres")


def pytest_report_header() -> str:
    return f"tickwork test database: {TEST_DATABASE}"


@pytest.fixture(scope="session")
def _database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not ON_POSTGRES:
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = create_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        yield str(path)
        return
    name = "tickwork_test_" + secrets.token_hex(4)
    # No pooled connection: a test may restart the server under it.
    admin = sa.create_engine(
        normalise_url(TEST_DATABASE), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(normalise_url(TEST_DATABASE)).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    engine = create_engine(rendered)
    migrate.upgrade(engine)
    engine.dispose()
    yield rendered
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def database_url(_database_template: str, tmp_path: Path) -> str:
    """A migrated, empty database for this test."""
    if not ON_POSTGRES:
        path = tmp_path / "tickwork.db"
        shutil.copyfile(_database_template, path)
        return f"sqlite:///{path}"
    engine = create_engine(_database_template)
    names = ", ".join(t.name for t in reversed(tables.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")
        conn.exec_driver_sql("INSERT INTO scheduler_state (id, generation) VALUES (1, 0)")
    engine.dispose()
    return _database_template


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The test's database. When the test ends, every connection taken from its pool must
    have been returned: a kept one fails the test, naming where it was taken."""
    database = Database(create_engine(database_url))
    try:
        with watched(database.engine):
            yield database
    finally:
        database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, deployment_id="dep_test", version="test")


@pytest.fixture
def ctx(db: Database, clock: FakeClock, settings: Settings) -> Context:
    return Context(db=db, clock=clock, settings=settings)
