"""The default deployment id: it names the code a process runs, not the process.

Two processes started from the same code (the same tickwork version and the same app
module source) get the same id, on any machine and in any directory, so adding or
restarting a replica never makes the others drain; changing the code gives a new id, so
the new release supersedes the old one (SPEC §9, Processes).
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

__all__ = ["code_deployment_id", "source_files"]

DIGEST_LENGTH = 12
MAX_VERSION = 100


def code_deployment_id(version: str, module: ModuleType | None) -> str:
    """``v0.1.0`` without an app module, else ``v0.1.0-<12 hex>``: the version and a
    digest of the module's source (its whole package's ``.py`` files when it is part of
    a package), paths taken relative to the package so the checkout's place is
    irrelevant."""
    version = version.strip()[:MAX_VERSION] or "dev"
    label = f"v{version}" if version[0].isdigit() else version
    if module is None:
        return label
    digest = hashlib.sha256(module.__name__.encode() + b"\0")
    for relative, path in source_files(module):
        digest.update(relative.encode() + b"\0")
        with contextlib.suppress(OSError):  # unreadable: its name still counts
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return f"{label}-{digest.hexdigest()[:DIGEST_LENGTH]}"


def source_files(module: ModuleType) -> list[tuple[str, Path]]:
    """The source files that make up ``module``'s code, as (relative path, path),
    sorted: every ``.py`` file of its top-level package, or the module's own file."""
    top_name = module.__name__.partition(".")[0]
    top = sys.modules.get(top_name, module)
    roots = [Path(p) for p in getattr(top, "__path__", None) or ()]
    if roots:
        found: dict[str, Path] = {}
        for root in roots:
            for path in _python_files(root):
                found.setdefault(path.relative_to(root).as_posix(), path)
        return sorted(found.items())
    file = getattr(module, "__file__", None)
    if not file:
        return []
    path = Path(file)
    return [(path.name, path)]


def _python_files(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return []
    return (
        path
        for path in root.rglob("*.py")
        if not any(
            part.startswith(".") or part == "__pycache__"
            for part in path.relative_to(root).parts[:-1]
        )
        and path.is_file()
    )
