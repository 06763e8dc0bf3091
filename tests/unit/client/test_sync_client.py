"""The synchronous client is the asynchronous one made synchronous, mechanically: one
description of every method, so the two cannot differ."""

from __future__ import annotations

import inspect

from tests.unit.client.unasync_client import MODULES, TARGETS, generate
from tickwork.client import AsyncClient, Client


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    for name, target in zip(MODULES, TARGETS, strict=True):
        assert target.read_text() == generate(name), f"{name}: run `make client-sync`"


def test_both_clients_have_the_same_resources_and_signatures() -> None:
    sync = Client("http://tickwork.example", "k")
    asynchronous = AsyncClient("http://tickwork.example", "k")
    resources = [name for name, value in vars(sync).items() if not name.startswith("_")]
    assert resources == [name for name in vars(asynchronous) if not name.startswith("_")]
    assert {
        "projects",
        "agents",
        "triggers",
        "invocations",
        "backfills",
        "definitions",
        "keys",
    } <= set(resources)
    for name in resources:
        ours, theirs = getattr(sync, name), getattr(asynchronous, name)
        methods = [m for m in dir(ours) if not m.startswith("_")]
        assert methods == [m for m in dir(theirs) if not m.startswith("_")], name
        for method in methods:
            assert inspect.signature(getattr(ours, method)).parameters.keys() == (
                inspect.signature(getattr(theirs, method)).parameters.keys()
            ), (name, method)
    sync.close()
