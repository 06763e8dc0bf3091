"""The worker pool: claim attempts, call targets under a timeout, record outcomes
(SPEC §5). Concurrency is bounded per process; leases are renewed while calls run;
cancels reach a running attempt within about a second.

One module, longer than most: the claim loop, the lease renewal, the cancel listener and
the outcome batcher share the pool's in-flight set and its events; each loop is short,
and splitting them would pass that state between modules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tickwork import metrics, tracing
from tickwork.clock import pause
from tickwork.domain.sanitize import with_traceback
from tickwork.errors import PermanentError, TargetError
from tickwork.logging import get_logger
from tickwork.runtime.notify import LocalNotifier
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.services.execution import Job, Outcome, fields_of
from tickwork.services.secrets import reveal as reveal_secret
from tickwork.storage.records import CANCELLED, COMPLETED, FAILED
from tickwork.targets.base import PreviousRun, Target, TargetCall, TargetResult
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import egress_client
from tickwork.targets.python import HandlerRegistry, PythonTarget, default_registry
from tickwork.targets.webhook import WebhookTarget

log = get_logger("tickwork.worker")

CLAIM_BATCH = 100
# How often running attempts are checked for a cancel made by another process.
CANCEL_CHECK_SECONDS = 1.0
RECOVERY_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10)
# An outcome is stored as its attempt ends. While other attempts are still running, the
# write waits this long for those ending at the same moment, so that they share one
# transaction; never longer, so a crash re-runs only the attempts that were running.
OUTCOME_LINGER_SECONDS = 0.002
# Under a backlog, a freed slot is refilled at once, never waiting for others to free: a
# claim waits this long for the attempts ending at the same moment, so that their slots
# are claimed in one transaction. Claims never overlap: while one is being made, the
# slots that free meanwhile are claimed together by the next.
CLAIM_LINGER_SECONDS = 0.002


class Targets:
    """Builds the target for a job; owns the shared HTTP client.

    The client enforces the egress policy from the settings on every connection
    (tickwork.targets.pinning); secrets are decrypted or read from the environment
    when the job is run, never earlier."""

    def __init__(self, ctx: Context, registry: HandlerRegistry | None = None) -> None:
        self.ctx = ctx
        self.registry = registry if registry is not None else default_registry
        settings = ctx.settings
        self.policy = EgressPolicy.from_entries(
            settings.allowed_target_networks, allow_private=settings.allow_private_targets
        )
        # Connecting is bounded (30 s); reads are bounded by each attempt's timeout. A
        # process never calls more targets at once than it has worker slots, so each
        # client's pool holds at most that many connections and keeps every one of them
        # alive between calls: a busy destination never has its connections closed and
        # opened again, and a burst never opens more connections than there are slots.
        slots = max(1, settings.worker_concurrency)
        self.client = egress_client(self.policy, max_connections=slots, max_idle_connections=slots)
        # The agent targets' SDKs send through a client of their own (same policy and
        # guarantees; its errors name the destination an agent).
        self.agent_client = egress_client(
            self.policy, max_connections=slots, max_idle_connections=slots, label="agent"
        )

    def for_job(self, job: Job) -> Target:
        spec = job.agent.target
        kind = spec.get("type")
        max_bytes = self.ctx.settings.webhook_max_response_bytes
        if kind in ("a2a", "openai"):
            return self._agent_target(spec)
        if kind == "webhook":
            return WebhookTarget(
                spec["url"],
                reveal_secret(spec.get("secret"), self.ctx.settings.secret_keys),
                self.client,
                self.ctx.clock,
                max_bytes,
            )
        if spec.get("type") == "python":
            return PythonTarget(self.registry, str(spec.get("handler")), max_bytes)
        raise PermanentError(f"unknown target type {spec.get('type')!r}")

    def _agent_target(self, spec: dict[str, Any]) -> Target:
        # Imported here: the SDKs are large, and only workers that run such agents need them.
        secret = reveal_secret(spec.get("secret"), self.ctx.settings.secret_keys)
        limit = self.ctx.settings.agent_max_response_bytes
        if spec["type"] == "a2a":
            from tickwork.targets.agent_a2a import A2ATarget

            return A2ATarget(
                spec["url"],
                secret,
                self.agent_client,
                protocol_version=str(spec.get("protocol_version") or "1.0"),
                max_response_bytes=limit,
            )
        from tickwork.targets.agent_openai import OpenAITarget

        return OpenAITarget(
            spec["base_url"],
            spec["model"],
            secret,
            self.agent_client,
            api=str(spec.get("api") or "responses"),
            instructions=spec.get("instructions"),
            max_response_bytes=limit,
        )

    async def close(self) -> None:
        await self.client.aclose()
        await self.agent_client.aclose()


class WorkerPool:
    def __init__(
        self,
        ctx: Context,
        notifier: LocalNotifier,
        targets: Targets,
        worker_id: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.notifier = notifier
        self.targets = targets
        self.worker_id = worker_id or f"{ctx.settings.deployment_id}/w_{secrets.token_hex(4)}"
        self.concurrency = ctx.settings.worker_concurrency
        self.wake = notifier.invocations
        self.inflight: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self.draining = False
        # Set while a newer deployment is current: claim nothing, finish what we hold.
        self.superseded = False
        self._backlog = False
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._lease_renew_at: datetime | None = None
        # Set whenever the attempts move: some are claimed, one ends, outcomes are stored.
        # Nothing here waits on it or clears it; a test awaits it instead of polling.
        self.changed = asyncio.Event()
        notifier.on_cancel(self._cancel_local)
        metrics.inflight.set_function(lambda: float(len(self.inflight)))

    # -- public ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then let running attempts finish."""
        flusher = asyncio.create_task(self._flush_loop(stop))
        maintenance = asyncio.create_task(self._maintenance_loop(stop))
        try:
            await self._claim_loop(stop)
            await self.drain()
        finally:
            maintenance.cancel()
            self._outcome_ready.set()
            await asyncio.gather(maintenance, return_exceptions=True)
            await flusher

    async def drain(self) -> None:
        """Claim nothing more; wait for the attempts in flight."""
        self.draining = True
        tasks = [task for _, task in self.inflight.values()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim what is due now and start it (for tests and benchmarks)."""
        return len(await self._claim())

    async def wait_idle(self) -> None:
        """Wait until no attempt is in flight and every outcome is recorded."""
        while self.inflight:
            await asyncio.gather(
                *[task for _, task in self.inflight.values()], return_exceptions=True
            )
        await self.flush()

    async def flush(self) -> None:
        if self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await asyncio.to_thread(execution.settle, self.ctx, batch)
            except BaseException:
                # The database is out of reach: keep the batch for the next try.
                self._outcomes = batch + self._outcomes
                raise
            self.changed.set()

    # -- loops ----------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self.wake.clear()
            try:
                claimed = await self._claim()
                failures = 0
            except Exception:  # keep working through a database outage
                delay = ERROR_BACKOFF_SECONDS[min(failures, len(ERROR_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.exception("claiming invocations failed; retrying", retry_in_seconds=delay)
                await pause(delay)
                continue
            if claimed and self._free() > 0 and not self._backlog:
                continue  # there may be more due right now
            if not (self._backlog and self._free() > 0):
                deadline = await self._next_deadline()
                await self.ctx.clock.sleep_until(deadline, self.wake)
            if self._backlog and self.inflight and not stop.is_set():
                # More is due than the slots hold: refill what freed, together with
                # the slots freeing at the same moment.
                await pause(CLAIM_LINGER_SECONDS)

    async def _claim(self) -> list[Job]:
        free = self._free()
        if free < 1 or self.draining or self.superseded:
            return []
        wanted = min(free, CLAIM_BATCH)
        jobs = await asyncio.to_thread(
            execution.claim_jobs, self.ctx, self.worker_id, wanted, self.running_per_tenant()
        )
        self._backlog = len(jobs) == wanted
        for job in jobs:
            task = asyncio.create_task(self._attempt(job))
            self.inflight[job.invocation.id] = (job, task)
            task.add_done_callback(self._done_callback(job.invocation.id))
        if jobs:
            self.changed.set()
        return jobs

    def _free(self) -> int:
        return self.concurrency - len(self.inflight)

    def running_per_tenant(self) -> dict[str, int]:
        """This pool's attempts in flight, per tenant."""
        return dict(Counter(job.invocation.tenant_id for job, _ in self.inflight.values()))

    def _saturated(self) -> list[str]:
        cap = self.ctx.settings.tenant_cap
        return [tenant for tenant, n in self.running_per_tenant().items() if n >= cap]

    def _done_callback(self, invocation_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self.inflight.pop(invocation_id, None)
            self.wake.set()
            self.changed.set()

        return done

    async def _next_deadline(self) -> datetime:
        now = self.ctx.clock.now()
        cap = now + timedelta(seconds=self.ctx.settings.worker_poll_seconds)
        if self._free() <= 0 or self.draining:
            return cap
        try:
            # A tenant at its share waits for one of its attempts to end (which wakes
            # this loop): its due work must not make the loop spin.
            earliest = await asyncio.to_thread(execution.next_wakeup, self.ctx, self._saturated())
        except Exception:  # the next claim reports the outage
            return cap
        return cap if earliest is None else max(now, min(cap, earliest))

    async def _maintenance_loop(self, stop: asyncio.Event) -> None:
        """Renew leases, notice cancels from other processes, recover lost attempts."""
        clock = self.ctx.clock
        next_recovery = clock.now()
        while True:
            now = clock.now()
            try:
                if self.inflight:
                    await self._check_inflight(now)
                if now >= next_recovery and not stop.is_set():
                    next_recovery = now + timedelta(seconds=RECOVERY_SECONDS)
                    await asyncio.to_thread(execution.recover_expired_leases, self.ctx)
            except Exception:  # retried on the next round
                log.exception("worker maintenance failed; retrying")
            await clock.sleep_until(now + timedelta(seconds=CANCEL_CHECK_SECONDS))

    async def _check_inflight(self, now: datetime) -> None:
        ids = list(self.inflight)
        gone = set(await asyncio.to_thread(execution.no_longer_running, self.ctx, ids))
        lease = self.ctx.settings.worker_lease_seconds
        if self._lease_renew_at is None or now >= self._lease_renew_at:
            held, _ = await asyncio.to_thread(execution.renew_leases, self.ctx, self.worker_id, ids)
            gone |= set(ids) - set(held)
            self._lease_renew_at = now + timedelta(seconds=lease / 3)
        if gone:
            self._cancel_local(sorted(gone))

    def _cancel_local(self, ids: list[str]) -> None:
        for invocation_id in ids:
            entry = self.inflight.get(invocation_id)
            if entry is not None and not entry[1].done():
                log.info("stopping a cancelled attempt", **fields_of(entry[0].invocation))
                entry[1].cancel()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        # One transaction for the attempts that ended together: within the linger, or
        # while the previous write was being made.
        while True:
            await self._outcome_ready.wait()
            if self.inflight and not stop.is_set():
                await pause(OUTCOME_LINGER_SECONDS)
            self._outcome_ready.clear()
            try:
                await self.flush()
            except Exception:  # keep the outcomes and retry
                log.exception("recording outcomes failed; retrying")
                await pause(1.0)
                self._outcome_ready.set()
            if stop.is_set() and not self.inflight and not self._outcomes:
                return

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, job: Job) -> None:
        inv = job.invocation
        with tracing.span(
            tracing.ATTEMPT_SPAN,
            tenant=inv.tenant_id,
            project=inv.project_id,
            agent=inv.agent_id,
            trigger_id=inv.trigger_id,
            invocation_id=inv.id,
            attempt=inv.attempt,
            origin=inv.origin,
        ) as span:
            outcome = await self._run_attempt(job)
            tracing.set_attributes(span, outcome=outcome)

    async def _run_attempt(self, job: Job) -> str:
        """Run one attempt; returns the attempt's outcome (completed, failed, retry,
        timeout, cancelled)."""
        inv = job.invocation
        trigger = job.trigger
        call = TargetCall(
            invocation_id=inv.id,
            idempotency_key=inv.idempotency_key,
            trigger_id=trigger.id,
            trigger_name=trigger.name,
            tenant=inv.tenant_id,
            project=inv.project_id,
            agent=inv.agent_id,
            ref_name=trigger.ref,
            ref_revision=job.ref_revision,
            scheduled_for=inv.scheduled_for,
            attempt=inv.attempt,
            origin=inv.origin,
            message=job.message,
            payload=inv.payload,
            timezone=trigger.timezone,
            previous=PreviousRun.from_doc(job.previous),
            conversation_id=job.conversation_id,
            run_as=trigger.run_as,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("attempt started", **fields_of(inv), agent_name=job.agent.name)
        clock = self.ctx.clock
        started = clock.now()
        if inv.attempt == 1:
            metrics.fire_lag.observe(max(0.0, (started - inv.scheduled_for).total_seconds()))
        deadline = started + timedelta(seconds=trigger.timeout_seconds)
        try:
            target = self.targets.for_job(job)
            outcome = await self._call_with_timeout(target, call, deadline, job)
        except asyncio.CancelledError:
            call.cancelled.set()
            # The invocation was cancelled (or the lease lost): the database already
            # says so; nothing more to record.
            log.info("attempt cancelled", **fields_of(inv))
            metrics.attempts_by_outcome[CANCELLED].inc()
            return CANCELLED
        except PermanentError as exc:
            outcome = self._failure(job, str(exc), transient=False)
        metrics.attempt_seconds.observe((clock.now() - started).total_seconds())
        self._record(outcome)
        return outcome.attempt_outcome or outcome.kind

    async def _call_with_timeout(
        self, target: Target, call: TargetCall, deadline: datetime, job: Job
    ) -> Outcome:
        clock = self.ctx.clock
        call_task: asyncio.Task[TargetResult] = asyncio.create_task(target.call(call))
        timer = asyncio.create_task(clock.sleep_until(deadline))
        try:
            await asyncio.wait({call_task, timer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancelled.set()
            call_task.cancel()
            timer.cancel()
            await asyncio.gather(call_task, timer, return_exceptions=True)
            raise
        timer.cancel()
        if not call_task.done():
            call.cancelled.set()
            call_task.cancel()
            await asyncio.gather(call_task, return_exceptions=True)
            seconds = job.trigger.timeout_seconds
            return self._failure(job, f"timed out after {seconds} s", True, "timeout")
        try:
            result = call_task.result()
        except TargetError as exc:
            # A python handler's own exception is its cause: kept with its traceback.
            cause = exc.__cause__ if isinstance(target, PythonTarget) else None
            cause = cause if isinstance(cause, Exception) else None
            message = str(exc) or type(exc).__name__
            return self._failure(job, message, exc.transient, exc=cause)
        except asyncio.CancelledError:
            return self._failure(job, "the target call was cancelled", True)
        except Exception as exc:  # a target's bug is a transient failure
            return self._failure(job, f"{type(exc).__name__}: {exc}", True, exc=exc)
        return Outcome(
            job.invocation.id,
            job.invocation.attempt,
            self.worker_id,
            COMPLETED,
            clock.now(),
            result=_result_doc(result),
            conversation_id=result.conversation_id,
            message=job.message,
            trigger_id=job.trigger.id,
            usage=None if result.usage is None else dict(result.usage),
        )

    def _failure(
        self,
        job: Job,
        error: str,
        transient: bool,
        attempt_outcome: str | None = None,
        exc: Exception | None = None,
    ) -> Outcome:
        """The outcome of a failed attempt. With ``exc`` (an exception raised by the
        target's code), the stored error holds its traceback, bounded in size, and the
        log line its structured traceback."""
        now = self.ctx.clock.now()
        kind, not_before = execution.decide_failure(
            job.invocation.attempt,
            job.trigger.max_retries,
            job.trigger.retry_delay_seconds,
            now,
            transient=transient,
        )
        return Outcome(
            job.invocation.id,
            job.invocation.attempt,
            self.worker_id,
            kind,
            now,
            error=with_traceback(error, exc),
            not_before=not_before,
            attempt_outcome=attempt_outcome,
            message=job.message,
            trigger_id=job.trigger.id,
            exc=exc,
        )

    def _record(self, outcome: Outcome) -> None:
        kind = outcome.attempt_outcome or outcome.kind
        counter = metrics.attempts_by_outcome.get(kind) or metrics.attempts.labels(outcome=kind)
        counter.inc()
        self._outcomes.append(outcome)
        self._outcome_ready.set()
        if outcome.kind == COMPLETED and not log.isEnabledFor(logging.INFO):
            return
        job = self.inflight.get(outcome.invocation_id)
        fields = fields_of(job[0].invocation) if job else {"invocation": outcome.invocation_id}
        if outcome.kind == COMPLETED:
            log.info("attempt completed", **fields)
        elif outcome.kind == FAILED:
            log.warning(
                "invocation failed",
                **fields,
                error=_first_line(outcome.error),
                exc_info=outcome.exc,
            )
        elif outcome.kind == CANCELLED:
            log.info("attempt cancelled", **fields)
        else:
            log.warning(
                "attempt failed; will retry",
                **fields,
                error=_first_line(outcome.error),
                retry_at=outcome.not_before,
                exc_info=outcome.exc,
            )


def _first_line(error: str | None) -> str | None:
    return None if error is None else error.split("\n", 1)[0]


def _result_doc(result: TargetResult) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if result.status_code is not None:
        doc["status_code"] = result.status_code
    if result.conversation_id is not None:
        doc["conversation_id"] = result.conversation_id
    if result.response is not None:
        try:
            doc["response"] = json.loads(result.response)
        except ValueError:
            doc["response"] = result.response
    if result.details:
        doc.update({k: v for k, v in result.details.items() if k not in doc})
    if result.usage is not None and "usage" not in doc:
        doc["usage"] = dict(result.usage)
    return doc
