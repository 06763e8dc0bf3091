"""docs/client.md's table of resources names every resource the client has, and only
those, with methods that exist."""

from __future__ import annotations

import re
from pathlib import Path

from tickwork.client import Client
from tickwork.client._sync.resources import _Resource

DOC = Path(__file__).parents[3] / "docs" / "client.md"
ROW = re.compile(r"^\| `client\.(\w+)` \| (.*) \|$", re.MULTILINE)


def test_the_guides_table_lists_every_resource_and_real_methods() -> None:
    client = Client("http://127.0.0.1:9", "tw_unused", tenant="t", project="p")
    try:
        resources = {
            name: value for name, value in vars(client).items() if isinstance(value, _Resource)
        }
        rows = dict(ROW.findall(DOC.read_text()))
        assert set(rows) == set(resources)
        for name, methods in rows.items():
            for method in re.findall(r"`(\w+)\(", methods):
                assert callable(getattr(resources[name], method, None)), f"{name}.{method}"
    finally:
        client.close()
