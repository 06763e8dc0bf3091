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


# A module longer than this says why in its docstring ("longer than most", "longer than
# other modules", or that it is generated).
LONG_MODULE_LINES = 400
REASONS = ("longer than most", "longer than other modules", "generated from")


def _long_modules_without_a_reason() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") <= LONG_MODULE_LINES:
            continue
        head = text.split('"""', 2)[:2]
        said = " ".join(head).lower().replace("\n", " ")
        if not any(reason in " ".join(said.split()) for reason in REASONS):
            found.append(str(path.relative_to(SRC)))
    return found


def test_a_long_module_says_why_it_is_long() -> None:
    assert _long_modules_without_a_reason() == []
