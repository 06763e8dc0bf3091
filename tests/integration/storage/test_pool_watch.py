"""The check every test's database gets as the test ends (tests/pools.py): a connection
kept out of the pool fails it, and the failure says where the connection was taken."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.pools import PoolWatch, watched
from tickwork.storage.engine import create_engine
from tickwork.storage.sql import Database

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_connection_never_closed_fails_the_check_naming_where_it_was_taken(
    db: Database,
) -> None:
    watch = PoolWatch(db.engine)
    try:
        kept = db.engine.connect()  # the leak
        with pytest.raises(AssertionError) as failure:
            watch.assert_all_returned()
        message = str(failure.value)
        assert message.startswith("1 connection(s) of ")
        assert "never returned" in message
        assert re.search(r"tests/integration/storage/test_pool_watch\.py:\d+ in test_a_", message)
        kept.close()
        watch.assert_all_returned()
    finally:
        watch.close()


def test_a_transaction_left_open_fails_the_check(db: Database) -> None:
    watch = PoolWatch(db.engine)
    try:
        opened = db.read()
        opened.__enter__()  # the leak: a transaction whose block never ends
        with pytest.raises(AssertionError, match="1 connection"):
            watch.assert_all_returned()
        opened.__exit__(None, None, None)
        watch.assert_all_returned()
    finally:
        watch.close()


def test_a_connection_kept_by_another_thread_is_named_too(db: Database) -> None:
    def take() -> sa.Connection:
        return db.engine.connect()

    async def keep() -> sa.Connection:
        return await asyncio.to_thread(take)

    watch = PoolWatch(db.engine)
    kept = asyncio.run(keep())
    try:
        with pytest.raises(AssertionError, match=r"test_pool_watch\.py:\d+ in take"):
            watch.assert_all_returned()
        kept.close()
        watch.assert_all_returned()
    finally:
        kept.close()
        watch.close()


def test_connections_returned_pass_and_the_count_survives_a_dispose(db: Database) -> None:
    with watched(db.engine) as watch:
        with db.write() as tx:
            tx.create_tenant("acme", NOW)
        with db.read() as tx:
            assert tx.tenant_exists("acme")
        db.dispose()
        kept = db.engine.connect()
        assert len(watch.leaks()) == 1
        kept.close()


def test_an_in_memory_database_without_a_pool_count_is_checked_by_the_watch() -> None:
    engine = create_engine("sqlite://")
    try:
        watch = PoolWatch(engine)
        kept = engine.connect()
        with pytest.raises(AssertionError, match="1 connection"):
            watch.assert_all_returned()
        kept.close()
        watch.assert_all_returned()
        watch.close()
    finally:
        engine.dispose()
