"""tickwork on PostgreSQL: dispatch throughput beside a raw-SQL baseline, worker
throughput with two worker processes, scheduler failover and hand-over, and the cost of
an idle wake-up over a million stored triggers (issue 5, "Performance").

    .venv/bin/python -m bench.pg_engine [--quick] [--only dispatch,workers,failover,idle]

Needs a PostgreSQL server: ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) names a database of a role that may
create databases; every measurement runs on throw-away databases made from it and
dropped afterwards.

Method, per section:

1. **Dispatch.** N triggers, all due at one instant ``now``, are seeded once into a
   migrated *template* database (``ANALYZE``d: the server may run without autovacuum).
   Every measured run gets its own copy of it (``CREATE DATABASE ... TEMPLATE``, then a
   ``CHECKPOINT``), so every run starts from the same rows, the same indexes and no dead
   tuples. tickwork: :func:`tickwork.services.dispatch.dispatch_batch` in a loop with a
   real fence (as ``Scheduler.tick`` does: one ``now``, until a batch comes back short).
   Baseline: :class:`bench.raw_dispatch.RawDispatcher`, the same statements on one
   psycopg connection. The runs of one batch size alternate between the two, several
   rounds; the table shows the median round. One-time triggers (``run_at``, spread over
   the minute before ``now``) and cron ``* * * * *`` in UTC (all due at one minute
   boundary), catch-up ``latest``, overlap ``allow``.
2. **Workers.** Two ``tickwork serve --role worker --app bench.noop_app`` processes of
   one deployment. N pending invocations (of N distinct one-time triggers, as a burst
   leaves them) are inserted in one transaction and announced with ``NOTIFY``; the clock
   runs from that commit until no invocation is pending or running.
3. **Failover and hand-over.** Two ``tickwork serve --role scheduler --role api``
   processes of one deployment and a per-second trigger (``* * * * * *``). Kill -9 the
   active one; the instants come from the standby's JSON log (``scheduler active``,
   then its first ``dispatch batch``) and are checked against
   ``GET /api/v1/system/scheduler``. A new standby is started after each kill. Hand-over:
   ``POST /api/deploy/restart-scheduler`` to the standby.
4. **Idle.** N triggers whose next run is a day or more away; 200 wake-ups of
   ``dispatch_batch`` (fenced, finds nothing) + ``earliest_due``, beside the same two
   queries in raw psycopg; then a real ``tickwork serve`` idling over the database.

The package: :mod:`~bench.pg_engine.common` (databases, seeding, measures), a module per
section (:mod:`~bench.pg_engine.dispatching`, :mod:`~bench.pg_engine.workers`,
:mod:`~bench.pg_engine.failover`, :mod:`~bench.pg_engine.idle`), the ``tickwork serve``
processes they start (:mod:`~bench.pg_engine.serving`) and the report with the command
line (:mod:`~bench.pg_engine.report`).
"""

from bench.pg_engine.common import LIBRARIES
from bench.pg_engine.report import main, run

__all__ = ["LIBRARIES", "main", "run"]
