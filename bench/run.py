"""Run every benchmark and write ``docs/benchmarks.md``.

    python -m bench.run            # full run, writes docs/benchmarks.md
    python -m bench.run --quick    # small counts, prints the report (a smoke test)
    python -m bench.run --output PATH

A benchmark is a module listed in :data:`BENCHMARKS` with ``run(quick: bool) -> str``
returning its section of the report in Markdown (and ``LIBRARIES``, the distributions
whose versions the report should name). If any benchmark raises, the exit status is 1
and no report is written, so a broken benchmark never replaces good figures.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType

BENCHMARKS = (
    "bench.cron_next",
    "bench.rrule_next",
    "bench.containment",
    "bench.retention",
    "bench.engine",
    "bench.webhook",
    "bench.compare",
    "bench.pg_engine",
)
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_section(modules: list[ModuleType], quick: bool) -> str:
    libraries = ["tickwork"]
    for module in modules:
        for name in getattr(module, "LIBRARIES", ()):
            if name not in libraries:
                libraries.append(name)
    versions = ", ".join(f"{name} {version_of(name)}" for name in libraries)
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `python -m bench.run`; run it again to refresh these figures on "
            "your machine. Figures from different machines are not comparable; the ratios "
            "within one run are.",
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d}",
            f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores)",
            f"- System: {platform.platform()}",
            f"- Python: {platform.python_implementation()} {platform.python_version()}",
            f"- Libraries: {versions}",
            f"- Mode: {'quick (small counts, not for comparison)' if quick else 'full'}",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts; print the report")
    parser.add_argument("--output", type=Path, help=f"where to write (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)

    modules = [importlib.import_module(name) for name in BENCHMARKS]
    sections = []
    failed = []
    for module in modules:
        print(f"== {module.__name__}", flush=True)
        try:
            sections.append(module.run(quick=args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(module.__name__)
    if failed:
        print(f"benchmark failed: {', '.join(failed)}; report not written", file=sys.stderr)
        return 1

    report = machine_section(modules, args.quick) + "\n" + "\n".join(sections)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if output is None:
        print(report)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
