"""docs/architecture.md names only modules that exist: each path it quotes, and each
``tickwork.`` module."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
SRC = ROOT / "src" / "tickwork"
QUOTED = re.compile(r"`([^`\s]+)`")


def _named_paths() -> list[str]:
    quoted = QUOTED.findall(DOC.read_text())
    return [q for q in quoted if "/" in q and (q.endswith(".py") or q.endswith("/"))]


def _exists(path: str) -> bool:
    # A path from the repository's root (src/..., tests/...) or from the package
    # (cli/serving.py, storage/sql/).
    return (ROOT / path).exists() or (SRC / path).exists()


def test_the_document_names_paths() -> None:
    assert len(_named_paths()) > 30


def test_every_path_the_document_names_exists() -> None:
    assert [p for p in _named_paths() if not _exists(p)] == []


def test_every_module_the_document_names_exists() -> None:
    modules = [q for q in QUOTED.findall(DOC.read_text()) if q.startswith("tickwork.")]
    assert modules
    assert [m for m in modules if importlib.util.find_spec(m) is None] == []
