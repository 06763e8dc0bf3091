"""The schema, as SQLAlchemy Core tables. Migrations must produce exactly this.

Longer than other modules on purpose: the whole schema in one place, each table with
its indexes and the reason for each, as the migrations' test compares it.
"""

from __future__ import annotations

import sqlalchemy as sa

from tickwork.storage.types import JSONDoc, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = sa.String(64)
Slug = sa.String(128)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", Slug, primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # Per-tenant quota overrides set through the admin API; NULL = the setting's default.
    sa.Column("quota_projects", sa.Integer(), nullable=True),
    sa.Column("quota_agents", sa.Integer(), nullable=True),
    sa.Column("quota_triggers", sa.Integer(), nullable=True),
    sa.Column("quota_api_keys", sa.Integer(), nullable=True),
    sa.Column("quota_slots_per_minute", sa.Integer(), nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("tenant_id", Slug, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("scope", sa.String(16), nullable=False, server_default="write"),
    sa.Index(None, "tenant_id"),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("tenant_id", Slug, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("id", Slug, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # An operator's pause of the whole project (SPEC §10); its triggers keep their own.
    sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("paused_reason", sa.Text(), nullable=True),
    sa.Column("paused_by", sa.String(200), nullable=True),
    sa.Column("paused_at", UTCDateTime(), nullable=True),
    sa.Column("paused_until", UTCDateTime(), nullable=True),
    # How long its invocation history is kept (SPEC §11); NULL = the setting's default.
    sa.Column("history_retention_days", sa.Integer(), nullable=True),
    sa.Column("history_max_per_trigger", sa.Integer(), nullable=True),
    # "Which pauses end now" is a range scan, read by the scheduler.
    sa.Index(
        "ix_projects_paused_until",
        "paused_until",
        postgresql_where=sa.text("paused_until IS NOT NULL"),
        sqlite_where=sa.text("paused_until IS NOT NULL"),
    ),
)

refs = sa.Table(
    "refs",
    metadata,
    sa.Column("tenant_id", Slug, primary_key=True),
    sa.Column("project_id", Slug, primary_key=True),
    sa.Column("name", Slug, primary_key=True),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"
    ),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("tenant_id", Slug, primary_key=True),
    sa.Column("project_id", Slug, primary_key=True),
    sa.Column("ref", Slug, primary_key=True),
    sa.Column("id", Slug, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("target", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The most attempts of this agent that run at once, across all workers (None: no cap).
    sa.Column("max_concurrency", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(
        ["tenant_id", "project_id", "ref"],
        ["refs.tenant_id", "refs.project_id", "refs.name"],
        ondelete="CASCADE",
    ),
)

scheduled_triggers = sa.Table(
    "scheduled_triggers",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("tenant_id", Slug, nullable=False),
    sa.Column("project_id", Slug, nullable=False),
    sa.Column("ref", Slug, nullable=False),
    sa.Column("agent_id", Slug, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("cron_expression", sa.String(200), nullable=True),
    sa.Column("run_at", UTCDateTime(), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("message_template", sa.Text(), nullable=True),
    sa.Column("max_retries", sa.Integer(), nullable=False),
    sa.Column("retry_delay_seconds", sa.Integer(), nullable=False),
    sa.Column("timeout_seconds", sa.Integer(), nullable=False),
    sa.Column("catchup", sa.String(16), nullable=False),
    sa.Column("catchup_window_seconds", sa.Integer(), nullable=False),
    sa.Column("overlap", sa.String(16), nullable=False),
    sa.Column("jitter_seconds", sa.Integer(), nullable=False),
    sa.Column("next_run_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Firings on a day the schedule fires (tickwork.domain.rate): a tenant's firing rate
    # is the sum over its enabled triggers, read from the index below.
    sa.Column("slots_per_day", sa.Integer(), nullable=False, server_default="0"),
    # Agent run context (SPEC §13): continuity, the daily token budget, who runs act for.
    sa.Column("conversation", sa.String(16), nullable=False, server_default="new"),
    sa.Column("daily_token_budget", sa.BigInteger(), nullable=True),
    sa.Column("run_as", sa.String(256), nullable=True),
    # The operator's control of its slots (SPEC §10, tickwork.domain.control): a pause
    # (which no definition push changes), skips to come, bounds and a cap on slots.
    sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("paused_reason", sa.Text(), nullable=True),
    sa.Column("paused_by", sa.String(200), nullable=True),
    sa.Column("paused_at", UTCDateTime(), nullable=True),
    sa.Column("paused_until", UTCDateTime(), nullable=True),
    # next_run_at is a wake-up (the end of a pause, a project resumed), not a slot.
    sa.Column("rearm", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("skip_remaining", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("starts_at", UTCDateTime(), nullable=True),
    sa.Column("ends_at", UTCDateTime(), nullable=True),
    sa.Column("max_runs", sa.Integer(), nullable=True),
    sa.Column("remaining_runs", sa.Integer(), nullable=True),
    # Health (SPEC §11), kept as invocations end: how many ended failed in a row, when
    # the last one completed and failed; pause after that many failures (None: the
    # setting); when the last trigger.late event was sent (None: not late since).
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_success_at", UTCDateTime(), nullable=True),
    sa.Column("last_failure_at", UTCDateTime(), nullable=True),
    sa.Column("pause_after_failures", sa.Integer(), nullable=True),
    sa.Column("late_notified_at", UTCDateTime(), nullable=True),
    # Calendars (SPEC §16): an RFC 5545 rule (one of cron_expression, run_at, rrule is
    # set), its start as a wall time of the zone (2026-01-05T09:00:00, not an instant),
    # and the calendar's canonical JSON.
    sa.Column("rrule", sa.String(1000), nullable=True),
    sa.Column("rrule_start", sa.String(19), nullable=True),
    sa.Column("calendar", JSONDoc, nullable=True),
    sa.ForeignKeyConstraint(
        ["tenant_id", "project_id", "ref", "agent_id"],
        ["agents.tenant_id", "agents.project_id", "agents.ref", "agents.id"],
        ondelete="CASCADE",
    ),
    # "What is due" is a range scan of this index, whatever the number of triggers.
    sa.Index(
        "ix_scheduled_triggers_due",
        "next_run_at",
        postgresql_where=sa.text("next_run_at IS NOT NULL"),
        sqlite_where=sa.text("next_run_at IS NOT NULL"),
    ),
    sa.Index(None, "tenant_id", "project_id", "ref", "agent_id", "id"),
    sa.Index(None, "tenant_id", "enabled", "slots_per_day"),
    # A trigger's name is unique per agent and ref (SPEC §10): a definition push matches
    # triggers by it. The project-wide list (GET /triggers) pages through this too.
    sa.Index(
        "uq_scheduled_triggers_name",
        "tenant_id",
        "project_id",
        "ref",
        "agent_id",
        "name",
        unique=True,
    ),
    sa.Index(None, "tenant_id", "project_id", "id"),
    # The triggers told late and not yet back on time: few, read by the late check.
    sa.Index(
        "ix_scheduled_triggers_late",
        "late_notified_at",
        postgresql_where=sa.text("late_notified_at IS NOT NULL"),
        sqlite_where=sa.text("late_notified_at IS NOT NULL"),
    ),
)

invocations = sa.Table(
    "invocations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    # No foreign key to the trigger: history outlives a deleted trigger.
    sa.Column("trigger_id", Id, nullable=False),
    sa.Column("trigger_name", sa.String(200), nullable=False),
    sa.Column("tenant_id", Slug, nullable=False),
    sa.Column("project_id", Slug, nullable=False),
    sa.Column("ref", Slug, nullable=False),
    sa.Column("agent_id", Slug, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("scheduled_for", UTCDateTime(), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.Text(), nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("not_before", UTCDateTime(), nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("deployment_id", sa.String(128), nullable=True),
    sa.Column("agent_name", sa.String(200), nullable=True),
    sa.Column("ref_revision", sa.BigInteger(), nullable=True),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Column("result", JSONDoc, nullable=True),
    sa.Column("conversation_id", sa.String(200), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("usage", JSONDoc, nullable=True),
    # The invocation a rerun repeats, and the backfill that created it.
    sa.Column("rerun_of", Id, nullable=True),
    sa.Column("backfill_id", Id, nullable=True),
    # "What may a worker claim" and "whose lease ran out" are range scans of these.
    sa.Index(
        "ix_invocations_claimable",
        "not_before",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    # A claim looking past one tenant's backlog for the others' due work walks this one.
    sa.Index(
        "ix_invocations_pending_tenant",
        "tenant_id",
        "not_before",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_invocations_leases",
        "lease_expires_at",
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    ),
    sa.Index(None, "trigger_id", "id"),
    sa.Index(None, "tenant_id", "project_id", "id"),
    sa.Index(
        "ix_invocations_backfill",
        "backfill_id",
        "status",
        postgresql_where=sa.text("backfill_id IS NOT NULL"),
        sqlite_where=sa.text("backfill_id IS NOT NULL"),
    ),
    # A trigger's oldest pending invocation, for its health (late, SPEC §11).
    sa.Index(
        "ix_invocations_pending_trigger",
        "trigger_id",
        "not_before",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    # A trigger's previous completed run, handed to its next one (SPEC §13).
    sa.Index(
        "ix_invocations_completed",
        "trigger_id",
        "completed_at",
        postgresql_where=sa.text("status = 'completed'"),
        sqlite_where=sa.text("status = 'completed'"),
    ),
    # Retention (SPEC §11): a project's finished invocations older than its retention,
    # and a trigger's finished invocations beyond its newest N, are range scans of these
    # (only finished invocations have a completed_at, so pending and running ones are in
    # neither index).
    sa.Index(
        "ix_invocations_retention",
        "tenant_id",
        "project_id",
        "completed_at",
        postgresql_where=sa.text("completed_at IS NOT NULL"),
        sqlite_where=sa.text("completed_at IS NOT NULL"),
    ),
    sa.Index(
        "ix_invocations_finished",
        "trigger_id",
        "completed_at",
        postgresql_where=sa.text("completed_at IS NOT NULL"),
        sqlite_where=sa.text("completed_at IS NOT NULL"),
    ),
)

# Every change made through the API (SPEC §11): who (``actor``: ``api-key:<id>`` or
# ``admin``), what (``action`` on ``target_type``/``target_id``) and the target before and
# after, secrets redacted. ``project_id`` is "" for a change to the tenant itself (keys,
# quotas). Ids sort by time, so the lists page by id; kept like invocation history.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("tenant_id", Slug, nullable=False),
    sa.Column("project_id", Slug, nullable=False, server_default=""),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(300), nullable=False),
    sa.Column("before", JSONDoc, nullable=True),
    sa.Column("after", JSONDoc, nullable=True),
    sa.Index(None, "tenant_id", "project_id", "id"),
    sa.Index(None, "tenant_id", "id"),
)

# Tokens used per trigger per UTC day (SPEC §13), added to as attempts complete; read
# by the scheduler for daily_token_budget. No foreign key: like invocations, it outlives
# a deleted trigger.
trigger_token_usage = sa.Table(
    "trigger_token_usage",
    metadata,
    sa.Column("trigger_id", Id, primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("tokens", sa.BigInteger(), nullable=False),
    sa.Column("invocations", sa.Integer(), nullable=False),
)

# A backfill of a trigger's past slots (SPEC §10): durable, dispatched by the active
# scheduler in batches. It keeps the schedule and bounds it was asked with, so its
# slots stay the ones counted when it was created.
backfills = sa.Table(
    "backfills",
    metadata,
    sa.Column("id", Id, primary_key=True),
    # No foreign key to the trigger: like invocations, a backfill outlives it.
    sa.Column("trigger_id", Id, nullable=False),
    sa.Column("tenant_id", Slug, nullable=False),
    sa.Column("project_id", Slug, nullable=False),
    sa.Column("ref", Slug, nullable=False),
    sa.Column("agent_id", Slug, nullable=False),
    sa.Column("range_from", UTCDateTime(), nullable=False),
    sa.Column("range_to", UTCDateTime(), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("max_concurrency", sa.Integer(), nullable=False),
    sa.Column("schedule", JSONDoc, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("slots", sa.Integer(), nullable=False),
    sa.Column("created", sa.Integer(), nullable=False),
    sa.Column("skipped", sa.Integer(), nullable=False),
    sa.Column("dispatched", sa.Integer(), nullable=False, server_default="0"),
    # How many slots its plan (backfill_slots) holds, and the position of the next one
    # to dispatch.
    sa.Column("planned", sa.Integer(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Index(None, "trigger_id", "id"),
    sa.Index(
        "ix_backfills_running",
        "created_at",
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    ),
)

# A backfill's plan, decided when it was created: the slots it runs, oldest first
# (``position`` 0, 1, …), each with the kind of key it runs under
# (tickwork.domain.control.backfill_kind). A batch reads only the slots it dispatches.
backfill_slots = sa.Table(
    "backfill_slots",
    metadata,
    sa.Column(
        "backfill_id", Id, sa.ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("position", sa.Integer(), primary_key=True),
    sa.Column("slot", UTCDateTime(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
)

invocation_attempts = sa.Table(
    "invocation_attempts",
    metadata,
    sa.Column(
        "invocation_id", Id, sa.ForeignKey("invocations.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("attempt", sa.Integer(), primary_key=True),
    sa.Column("deployment_id", sa.String(128), nullable=True),
    sa.Column("worker_id", sa.String(128), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
)

# Answers to creating POSTs sent with an ``Idempotency-Key`` (SPEC §10), per tenant: a
# request sent again with the same key and body within ``expires_at`` gets the stored
# answer. ``status`` is NULL while the first request is still being handled.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", Slug, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("status", sa.Integer(), nullable=True),
    sa.Column("headers", JSONDoc, nullable=True),
    sa.Column("body", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index(None, "expires_at"),
)

# A project's notification targets (SPEC §11): one document per project, its secrets
# sealed like agents' (tickwork.services.secrets); ``revision`` makes its ETag.
project_notifications = sa.Table(
    "project_notifications",
    metadata,
    sa.Column("tenant_id", Slug, primary_key=True),
    sa.Column("project_id", Slug, primary_key=True),
    sa.Column("targets", JSONDoc, nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(
        ["tenant_id", "project_id"],
        ["projects.tenant_id", "projects.id"],
        ondelete="CASCADE",
    ),
)

# The outbox (SPEC §11): one row per event and target, written in the transaction of
# the event's cause, delivered by the workers at least once. No foreign key: a
# delivery outlives its trigger, and a project's deletion deletes its rows itself.
notification_outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("event_id", Id, nullable=False),
    sa.Column("tenant_id", Slug, nullable=False),
    sa.Column("project_id", Slug, nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("target", JSONDoc, nullable=False),
    sa.Column("body", JSONDoc, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    # "What is due for delivery" is a range scan of this index.
    sa.Index(
        "ix_notification_outbox_due",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index(None, "tenant_id", "project_id", "id"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
)

# One row per running ``tickwork serve`` process (SPEC §9, Processes): written when the
# process is fully up, renewed by its heartbeat, deleted when it stops. A deployment is
# live while one of its processes is unexpired.
processes = sa.Table(
    "processes",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("deployment_id", sa.String(128), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("roles", JSONDoc, nullable=False),
    sa.Column("handlers", JSONDoc, nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index(None, "deployment_id"),
)

scheduler_state = sa.Table(
    "scheduler_state",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("deployment_id", sa.String(128), nullable=True),
    sa.Column("generation", sa.BigInteger(), nullable=False),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("id = 1", name="singleton"),
)
