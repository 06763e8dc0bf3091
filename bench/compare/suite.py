"""One run of the comparison and its report, as ``bench.run`` calls it."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from bench.compare.collect import collect
from bench.compare.report import render
from bench.compare.sizes import CHARTS, PEERS_PY, RESULTS, ROOT


def run(quick: bool) -> str:
    res = collect(quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    fields = {k: v for k, v in res.__dict__.items() if k != "done"}
    data = json.dumps(fields, default=lambda o: o.__dict__, indent=1)
    path = RESULTS / ("compare-quick.json" if quick else "compare.json")
    path.write_text(data)
    charts: list[str] = []
    if not res.peers_error:
        target = Path(tempfile.mkdtemp(prefix="tickwork-charts-")) if quick else CHARTS
        out = subprocess.run(
            [str(PEERS_PY), str(ROOT / "bench" / "peers" / "charts.py"), str(path), str(target)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode == 0 and not quick:
            charts = out.stdout.split()
        elif out.returncode != 0:
            print(f"   charts failed: {out.stderr.strip()[-300:]}", flush=True)
    return render(res, charts)
