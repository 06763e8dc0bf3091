"""Generate the synchronous client from the asynchronous one with unasync.

``python -m tests.unit.client.unasync_client`` (``make client-sync``) rewrites
src/tickwork/client/_sync/client.py; tests/unit/client/test_sync_client.py fails when it
is not what this generates."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

PACKAGE = Path(__file__).resolve().parents[3] / "src" / "tickwork" / "client"
MODULES = ("client.py", "resources.py")
TARGETS = tuple(PACKAGE / "_sync" / name for name in MODULES)
RUFF = Path(sys.executable).with_name("ruff")
HEADER = (
    "# Generated from tickwork/client/_async/{name} by unasync (make client-sync): do not edit.\n"
)
# Beyond unasync's own (async/await, __aenter__, AsyncIterator, ...).
REPLACEMENTS = {
    "AsyncClient": "Client",
    "aclose": "close",
    "_async": "_sync",
}
# Only where the name means the clock's wait, not a method (Triggers.pause).
MODULE_REPLACEMENTS = {"client.py": {"pause": "blocking_pause"}}


def generate(name: str) -> str:
    """The synchronous module made from ``_async/<name>``."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "_async" / name
        source.parent.mkdir()
        shutil.copyfile(PACKAGE / "_async" / name, source)
        replacements = {**REPLACEMENTS, **MODULE_REPLACEMENTS.get(name, {})}
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=replacements)
        unasync.unasync_files([str(source)], rules=[rule])
        text = (Path(tmp) / "_sync" / name).read_text()
    target = str(PACKAGE / "_sync" / name)
    # Imports sorted again (``_sync`` sorts after ``_core``, ``_async`` before), then
    # formatted: the generated module is as ruff wants it.
    sorted_ = subprocess.run(
        [str(RUFF), "check", "--select", "I", "--fix", "--quiet", "--stdin-filename", target],
        input=HEADER.format(name=name) + text,
        capture_output=True,
        text=True,
        check=True,
    )
    formatted = subprocess.run(
        [str(RUFF), "format", "--stdin-filename", target, "-"],
        input=sorted_.stdout,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> None:
    for name, target in zip(MODULES, TARGETS, strict=True):
        target.write_text(generate(name))
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
