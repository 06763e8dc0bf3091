"""tickwork beside its peers, on this machine, in one run (issue 6).

    python -m bench.compare            # the section alone, full sizes (long)
    python -m bench.compare --quick    # the section alone, small sizes
    python -m bench.run                # every benchmark, writes docs/benchmarks.md
    BENCH_RESUME=1 python -m bench.run # reuse what an interrupted run saved

Each finished (workload, system, database) is saved to ``bench/results/compare-partial.json``
as the run goes; ``BENCH_RESUME=1`` takes those instead of running them again.

The peers (APScheduler 4, DBOS Transact, procrastinate) are installed by this benchmark
into a virtualenv of their own, ``bench/.peers-venv``, from ``bench/peers-requirements.txt``;
never into tickwork's. Every workload of every system runs as a subprocess — a script per
system under ``bench/peers/`` — that prints one JSON document; tickwork's runs in tickwork's
venv (``bench/peers/run_tickwork.py``). Systems run one after the other, never at once.

The job body of every system is the same no-op that appends one line to a file
(``bench/peers/_common.py``): start times, lost runs and duplicated runs are read from
those lines. A peer that fails or cannot do a workload is reported as such; tickwork
failing fails the benchmark.

The package: :mod:`~bench.compare.sizes` (paths, labels, the sizes of a run),
:mod:`~bench.compare.systems` (the peers' venv, one workload of one system),
:mod:`~bench.compare.collect` (the whole run, resumable), :mod:`~bench.compare.report`
(the Markdown section) and :mod:`~bench.compare.suite` (``run``, which ties them).
"""

from bench.compare.sizes import LIBRARIES
from bench.compare.suite import run

__all__ = ["LIBRARIES", "run"]
