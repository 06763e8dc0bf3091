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
SOURCE = PACKAGE / "_async" / "client.py"
TARGET = PACKAGE / "_sync" / "client.py"
RUFF = Path(sys.executable).with_name("ruff")
HEADER = (
    "# Generated from tickwork/client/_async/client.py by unasync "
    "(make client-sync): do not edit.\n"
)
# Beyond unasync's own (async/await, __aenter__, AsyncIterator, ...).
REPLACEMENTS = {
    "AsyncClient": "Client",
    "aclose": "close",
    "pause": "blocking_pause",
}


def generate() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "_async" / "client.py"
        source.parent.mkdir()
        shutil.copyfile(SOURCE, source)
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(source)], rules=[rule])
        text = (Path(tmp) / "_sync" / "client.py").read_text()
    formatted = subprocess.run(
        [str(RUFF), "format", "--stdin-filename", str(TARGET), "-"],
        input=HEADER + text,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> None:
    TARGET.write_text(generate())
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
