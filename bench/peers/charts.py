"""Charts for bench/compare/, drawn in the peers' venv (matplotlib is no dependency of
tickwork). ``python charts.py RESULTS.json OUTDIR`` writes PNGs and prints their names."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LABEL = {
    "tickwork": "tickwork",
    "apscheduler": "APScheduler 4",
    "dbos": "DBOS",
    "procrastinate": "procrastinate",
    "seed": "seed's design",
}
DB = {"pg": "PostgreSQL", "sqlite": "SQLite"}


def _name(r: dict[str, Any]) -> str:
    return f"{LABEL[r['system']]} ({DB[r['db']]})"


def lag_cdf(rows: list[dict[str, Any]], title: str, path: Path) -> bool:
    rows = [r for r in rows if "error" not in r and r.get("lag", {}).get("quantiles_ms")]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in rows:
        q = [max(v, 0.1) for v in r["lag"]["quantiles_ms"]]
        style = "-" if r["system"] == "tickwork" else "--"
        ax.plot(q, range(101), style, label=_name(r), linewidth=2 if style == "-" else 1.3)
    ax.set_xscale("log")
    ax.set_xlabel("lag: body start − due time (ms, log scale)")
    ax.set_ylabel("percentile")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def throughput(rows: list[dict[str, Any]], key: str, title: str, path: Path, n: int | None) -> bool:
    rows = [
        r
        for r in rows
        if "error" not in r and r.get(key) is not None and (n is None or r.get("n") == n)
    ]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = [_name(r) for r in rows]
    values = [r[key] for r in rows]
    colors = ["#2a7" if r["system"] == "tickwork" else "#888" for r in rows]
    bars = ax.barh(names, values, color=colors)
    for bar, r in zip(bars, rows, strict=True):
        if r.get(key + "_min") is not None and r.get("reps", 1) > 1:
            ax.errorbar(
                r[key],
                bar.get_y() + bar.get_height() / 2,
                xerr=[[r[key] - r[key + "_min"]], [r[key + "_max"] - r[key]]],
                color="black",
                capsize=3,
            )
    ax.set_xscale("log")
    ax.set_xlabel("completed per second (log scale)")
    ax.set_title(title)
    ax.invert_yaxis()
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> int:
    data = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    made = []
    burst_n = data["sizes"]["burst_n"]
    if lag_cdf(data["precision"], "Fire precision: lag distribution", out / "precision-lag.png"):
        made.append("precision-lag.png")
    if lag_cdf(data["sustained"], "Sustained: lag distribution", out / "sustained-lag.png"):
        made.append("sustained-lag.png")
    if throughput(
        data["burst"],
        "completed_per_s",
        f"Burst of {burst_n:,} jobs: throughput",
        out / "burst-throughput.png",
        burst_n,
    ):
        made.append("burst-throughput.png")
    if throughput(
        data["sustained"],
        "completed_per_s",
        "Sustained: completed per second",
        out / "sustained-throughput.png",
        None,
    ):
        made.append("sustained-throughput.png")
    print(" ".join(made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
