"""Where the comparison keeps its files, the systems' labels, and the sizes of a full and
a quick run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LIBRARIES: tuple[str, ...] = ("psycopg",)
ROOT = Path(__file__).resolve().parents[2]
PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEERS_REQUIREMENTS = ROOT / "bench" / "peers-requirements.txt"
PEERS_PY = PEERS_VENV / "bin" / "python"
RESULTS = ROOT / "bench" / "results"
CHARTS = ROOT / "docs" / "benchmarks"
PEER_DISTRIBUTIONS = ("APScheduler", "dbos", "procrastinate", "SQLAlchemy", "asyncpg", "aiosqlite")

LABEL = {
    "tickwork": "tickwork",
    "apscheduler": "APScheduler 4",
    "dbos": "DBOS Transact",
    "procrastinate": "procrastinate",
    "seed": "seed's design",
}
DB_LABEL = {"pg": "PostgreSQL", "sqlite": "SQLite"}


@dataclass(frozen=True)
class Sizes:
    precision_n: int
    spread: float
    lead: float
    burst_n: int
    burst_big_n: int  # tickwork alone, at the full size
    burst_reps: int  # tickwork's repetitions; a peer repeats while a run stays short
    sustained_n: int  # tickwork on PostgreSQL: the size it must sustain
    sustained_ladder: tuple[int, ...]  # every other system: sizes tried until one fails
    window: float
    scale_n: int
    scale_sizes_tickwork: tuple[int, ...]
    idle: float
    restart_n: int
    warmup: int
    # (system, db) pairs per workload
    precision: tuple[tuple[str, str], ...]
    burst: tuple[tuple[str, str], ...]
    sustained: tuple[tuple[str, str], ...]
    scale: tuple[tuple[str, str], ...]
    restart: tuple[tuple[str, str], ...]


ALL_ONCE = (
    ("tickwork", "pg"),
    ("apscheduler", "pg"),
    ("dbos", "pg"),
    ("procrastinate", "pg"),
    ("tickwork", "sqlite"),
    ("apscheduler", "sqlite"),
    ("dbos", "sqlite"),
)
PG_ONLY = (
    ("tickwork", "pg"),
    ("apscheduler", "pg"),
    ("dbos", "pg"),
    ("procrastinate", "pg"),
    ("tickwork", "sqlite"),
)

FULL = Sizes(
    precision_n=1000,
    spread=60.0,
    lead=5.0,
    burst_n=2000,
    burst_big_n=10_000,
    burst_reps=3,
    sustained_n=50_000,
    sustained_ladder=(3_000, 10_000, 25_000, 50_000),
    window=120.0,
    scale_n=20_000,
    scale_sizes_tickwork=(1000, 200_000),
    idle=60.0,
    restart_n=2000,
    warmup=50,
    precision=(*ALL_ONCE, ("seed", "sqlite")),
    burst=ALL_ONCE,
    sustained=PG_ONLY,
    scale=PG_ONLY,
    restart=PG_ONLY,
)
QUICK = Sizes(
    precision_n=50,
    spread=3.0,
    lead=2.0,
    burst_n=200,
    burst_big_n=0,
    burst_reps=1,
    sustained_n=60,
    sustained_ladder=(60,),
    window=8.0,
    scale_n=500,
    scale_sizes_tickwork=(),
    idle=2.0,
    restart_n=200,
    warmup=10,
    precision=(
        ("tickwork", "pg"),
        ("tickwork", "sqlite"),
        ("apscheduler", "pg"),
        ("dbos", "pg"),
        ("procrastinate", "pg"),
        ("seed", "sqlite"),
    ),
    burst=(
        ("tickwork", "pg"),
        ("tickwork", "sqlite"),
        ("apscheduler", "pg"),
        ("dbos", "pg"),
        ("procrastinate", "pg"),
    ),
    sustained=(("tickwork", "pg"), ("tickwork", "sqlite")),
    scale=(("tickwork", "pg"), ("tickwork", "sqlite")),
    restart=(("tickwork", "pg"),),
)


class TickworkFailed(RuntimeError):
    """tickwork's own part failed: the benchmark fails."""
