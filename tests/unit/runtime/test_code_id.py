"""The default deployment id names the code: the version and the app module's source."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from tickwork.runtime.code_id import code_deployment_id, source_files


def package(root: Path, files: dict[str, str]) -> Path:
    """A package ``myapp`` under ``root`` with these files (relative paths)."""
    base = root / "myapp"
    for name, text in {"__init__.py": "", **files}.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return base


def loaded(
    monkeypatch: pytest.MonkeyPatch, base: Path, name: str = "myapp.tasks"
) -> types.ModuleType:
    """The modules as an import of ``name`` from ``base`` would leave them."""
    top = types.ModuleType("myapp")
    top.__path__ = [str(base)]
    top.__file__ = str(base / "__init__.py")
    monkeypatch.setitem(sys.modules, "myapp", top)
    module = types.ModuleType(name)
    module.__file__ = str(base / (name.split(".", 1)[1].replace(".", "/") + ".py"))
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_without_an_app_module_it_is_the_version() -> None:
    assert code_deployment_id("0.1.0", None) == "v0.1.0"
    assert code_deployment_id("v2.0", None) == "v2.0"
    assert code_deployment_id("dev", None) == "dev"


def test_the_same_code_in_two_checkouts_gets_the_same_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"tasks.py": "X = 1\n", "lib/util.py": "Y = 2\n"}
    one = code_deployment_id("0.1.0", loaded(monkeypatch, package(tmp_path / "a", files)))
    two = code_deployment_id("0.1.0", loaded(monkeypatch, package(tmp_path / "b", files)))
    assert one == two
    assert one.startswith("v0.1.0-")
    assert len(one.removeprefix("v0.1.0-")) == 12
    assert all(c in "0123456789abcdef" for c in one.removeprefix("v0.1.0-"))


def test_any_change_to_the_package_source_or_the_version_gives_a_new_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = package(tmp_path, {"tasks.py": "X = 1\n", "lib/util.py": "Y = 2\n"})
    module = loaded(monkeypatch, base)
    first = code_deployment_id("0.1.0", module)
    assert code_deployment_id("0.1.1", module) != first
    (base / "lib" / "util.py").write_text("Y = 3\n")  # a module the app imports
    changed = code_deployment_id("0.1.0", module)
    assert changed != first
    (base / "lib" / "util.py").write_text("Y = 2\n")
    assert code_deployment_id("0.1.0", module) == first


def test_caches_and_hidden_directories_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = package(tmp_path, {"tasks.py": "X = 1\n"})
    module = loaded(monkeypatch, base)
    before = code_deployment_id("0.1.0", module)
    package(tmp_path, {"__pycache__/tasks.py": "junk", ".venv/x.py": "junk", "notes.txt": "x"})
    assert code_deployment_id("0.1.0", module) == before
    assert [rel for rel, _ in source_files(module)] == ["__init__.py", "tasks.py"]


def test_a_top_level_module_counts_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "handlers.py"
    path.write_text("A = 1\n")
    module = types.ModuleType("handlers")
    module.__file__ = str(path)
    first = code_deployment_id("0.1.0", module)
    path.write_text("A = 2\n")
    assert code_deployment_id("0.1.0", module) != first
