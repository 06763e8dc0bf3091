"""The python target: registry, decorator, calling handlers, loading the app module."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import within
from tickwork.errors import PermanentError, TransientError, ValidationError
from tickwork.targets import python as python_target
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.python import (
    AppLoadError,
    HandlerRegistry,
    PythonTarget,
    handler,
    load_app,
)

# Generous bound on waits for threads, so a broken implementation fails instead of hanging.
PROMPT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_call() -> TargetCall:
    return TargetCall(
        invocation_id="inv_01",
        idempotency_key="sched:trg_01:2026-03-08T07:00:00Z",
        trigger_id="trg_01",
        trigger_name="Daily report",
        tenant="acme",
        project="ops",
        agent="reporter",
        ref_name="main",
        ref_revision=1,
        scheduled_for=datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        attempt=1,
        origin="schedule",
        message="make the report",
        payload={"team": "ops"},
        timezone="Europe/London",
    )


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


async def run(registry: HandlerRegistry, name: str, **kwargs: Any) -> TargetResult:
    return await PythonTarget(registry, name, **kwargs).call(make_call())


# --- registry and decorator ------------------------------------------------------------


def test_the_decorator_registers_under_the_given_name_and_returns_the_function() -> None:
    registry = HandlerRegistry()

    @handler("daily-report", registry=registry)
    async def report(call: TargetCall) -> None:
        return None

    assert registry.get("daily-report") is report
    assert registry.names() == ["daily-report"]
    assert "daily-report" in registry
    assert registry.get("weekly-report") is None


def test_the_decorator_defaults_to_the_function_name_with_or_without_parentheses() -> None:
    registry = HandlerRegistry()

    @handler(registry=registry)
    def nightly_cleanup(call: TargetCall) -> None:
        return None

    assert registry.names() == ["nightly_cleanup"]


def test_a_bare_decorator_uses_the_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = HandlerRegistry()
    monkeypatch.setattr(python_target, "default_registry", fresh)

    @handler
    def ping(call: TargetCall) -> str:
        return "pong"

    assert fresh.get("ping") is ping


def test_registering_another_function_under_a_taken_name_is_refused() -> None:
    registry = HandlerRegistry()

    def first(call: TargetCall) -> None:
        return None

    def second(call: TargetCall) -> None:
        return None

    registry.register("job", first)
    registry.register("job", first)  # the same function again is harmless

    with pytest.raises(ValidationError, match="'job' is already registered"):
        registry.register("job", second)
    assert registry.get("job") is first


@pytest.mark.parametrize("name", ["", "a" * 101, "has space", "slash/name", "naïve", "semi;colon"])
def test_bad_handler_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HandlerRegistry().register(name, lambda call: None)

    assert caught.value.field == "handler"


@pytest.mark.parametrize("name", ["a", "a" * 100, "reports.daily", "team:ops-report_v2"])
def test_good_handler_names_are_accepted(name: str) -> None:
    registry = HandlerRegistry()
    registry.register(name, lambda call: None)

    assert registry.names() == [name]


def test_an_empty_registry_is_still_a_registry() -> None:
    # `registry or default_registry` must never swap an empty registry for the default.
    assert HandlerRegistry()


# --- calling handlers ------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_async_handler_is_awaited_with_the_call() -> None:
    registry = HandlerRegistry()
    seen: list[TargetCall] = []

    @handler("async-report", registry=registry)
    async def report(call: TargetCall) -> dict[str, Any]:
        seen.append(call)
        return {"conversation_id": "conv-7", "pages": 3}

    result = await run(registry, "async-report")

    assert [call.invocation_id for call in seen] == ["inv_01"]
    assert result.conversation_id == "conv-7"
    assert result.response == '{"conversation_id": "conv-7", "pages": 3}'
    assert result.status_code is None


@pytest.mark.anyio
async def test_a_sync_handler_runs_in_a_worker_thread() -> None:
    registry = HandlerRegistry()
    threads: list[int] = []

    @handler("sync-report", registry=registry)
    def report(call: TargetCall) -> str:
        threads.append(threading.get_ident())
        return "written"

    result = await run(registry, "sync-report")

    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    assert result == TargetResult(response="written")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("returned", "conversation_id", "response"),
    [
        (None, None, None),
        ("plain text", None, "plain text"),
        ({"conversation_id": "conv-1"}, "conv-1", '{"conversation_id": "conv-1"}'),
        ({"conversation_id": 42}, None, '{"conversation_id": 42}'),
        ({"conversation_id": ""}, None, '{"conversation_id": ""}'),
        ([1, "two", None], None, '[1, "two", null]'),
        (7, None, "7"),
        (_Opaque(), None, "<opaque>"),  # not JSON: stored as its repr
        (TargetResult(conversation_id="conv-9"), "conv-9", None),
    ],
)
async def test_return_values_become_the_result(
    returned: object, conversation_id: str | None, response: str | None
) -> None:
    registry = HandlerRegistry()
    registry.register("returns", lambda call: returned)

    result = await run(registry, "returns")

    assert result.conversation_id == conversation_id
    assert result.response == response


@pytest.mark.anyio
async def test_the_stored_response_is_capped_on_a_character_boundary() -> None:
    registry = HandlerRegistry()
    registry.register("chatty", lambda call: "é" * 1000)  # two bytes each in UTF-8

    result = await run(registry, "chatty", max_response_bytes=101)

    assert result.response == "é" * 50


@pytest.mark.anyio
async def test_a_plain_callable_returning_a_coroutine_is_awaited() -> None:
    registry = HandlerRegistry()

    async def later(call: TargetCall) -> str:
        return f"done {call.trigger_name}"

    registry.register("wrapped", lambda call: later(call))

    assert (await run(registry, "wrapped")).response == "done Daily report"


# --- failures --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_unknown_handler_fails_permanently() -> None:
    with pytest.raises(PermanentError) as caught:
        await run(HandlerRegistry(), "missing")

    assert str(caught.value) == "no python handler named 'missing' is registered in this deployment"


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [True, False])
async def test_a_permanent_error_from_the_handler_stays_permanent(is_async: bool) -> None:
    def fail(call: TargetCall) -> None:
        raise PermanentError("the report template is gone")

    async def fail_async(call: TargetCall) -> None:
        fail(call)

    registry = HandlerRegistry()
    registry.register("fails", fail_async if is_async else fail)

    with pytest.raises(PermanentError, match="the report template is gone"):
        await run(registry, "fails")


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [True, False])
async def test_any_other_exception_is_transient_and_named(is_async: bool) -> None:
    def fail(call: TargetCall) -> None:
        raise ConnectionResetError("database went away")

    async def fail_async(call: TargetCall) -> None:
        fail(call)

    registry = HandlerRegistry()
    registry.register("flaky", fail_async if is_async else fail)

    with pytest.raises(TransientError) as caught:
        await run(registry, "flaky")

    assert str(caught.value) == "ConnectionResetError: database went away"
    assert isinstance(caught.value.__cause__, ConnectionResetError)


@pytest.mark.anyio
async def test_an_exception_without_text_is_named_by_its_type() -> None:
    registry = HandlerRegistry()

    def fail(call: TargetCall) -> None:
        raise KeyError

    registry.register("bare", fail)

    with pytest.raises(TransientError, match=r"^KeyError$"):
        await run(registry, "bare")


# --- cancellation ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_cancelled_sync_handler_sees_call_cancelled_and_can_stop() -> None:
    registry = HandlerRegistry()
    started = threading.Event()
    stopped = threading.Event()
    saw_cancel: list[bool] = []

    @handler("long-sync", registry=registry)
    def long_job(call: TargetCall) -> str:
        started.set()
        # A cooperative handler: wait for the cancel signal instead of finishing.
        saw_cancel.append(call.cancelled.wait(timeout=PROMPT))
        stopped.set()
        return "stopped early"

    call = make_call()
    task = asyncio.create_task(PythonTarget(registry, "long-sync").call(call))
    assert await asyncio.to_thread(started.wait, PROMPT)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert call.cancelled.is_set()
    assert await asyncio.to_thread(stopped.wait, PROMPT)
    assert saw_cancel == [True]


@pytest.mark.anyio
async def test_a_cancelled_async_handler_is_cancelled_with_the_call() -> None:
    registry = HandlerRegistry()
    started = asyncio.Event()
    never = asyncio.Event()
    outcome: list[str] = []

    @handler("long-async", registry=registry)
    async def long_job(call: TargetCall) -> None:
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    call = make_call()
    task = asyncio.create_task(PythonTarget(registry, "long-async").call(call))
    await within(started.wait(), "the handler starting", PROMPT)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert outcome == ["cancelled"]
    assert call.cancelled.is_set()


# --- load_app --------------------------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for throwaway app modules, forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("tw_app_"):
            del sys.modules[name]


def test_load_app_imports_the_module_and_runs_its_decorators(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = HandlerRegistry()
    monkeypatch.setattr(python_target, "default_registry", fresh)
    (app_dir / "tw_app_ok.py").write_text(
        "import tickwork.targets.python as t\n"
        "@t.handler('daily-report')\n"
        "def daily_report(call):\n"
        "    return 'ok'\n"
    )

    module = load_app("tw_app_ok")

    assert module.__name__ == "tw_app_ok"
    assert fresh.names() == ["daily-report"]


def test_load_app_says_when_the_module_does_not_exist(app_dir: Path) -> None:
    with pytest.raises(AppLoadError, match="cannot import app module 'tw_app_nowhere'") as caught:
        load_app("tw_app_nowhere")

    assert "PYTHONPATH" in str(caught.value)


def test_load_app_tells_a_missing_dependency_from_a_missing_module(app_dir: Path) -> None:
    (app_dir / "tw_app_dep.py").write_text("import tw_dependency_not_installed\n")

    with pytest.raises(AppLoadError) as caught:
        load_app("tw_app_dep")

    assert str(caught.value) == (
        "importing app module 'tw_app_dep' failed: ModuleNotFoundError: "
        "No module named 'tw_dependency_not_installed'"
    )


def test_load_app_reports_an_error_raised_while_importing(app_dir: Path) -> None:
    (app_dir / "tw_app_boom.py").write_text("raise RuntimeError('settings missing')\n")

    with pytest.raises(AppLoadError) as caught:
        load_app("tw_app_boom")

    assert str(caught.value) == (
        "importing app module 'tw_app_boom' failed: RuntimeError: settings missing"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_load_app_reports_a_syntax_error(app_dir: Path) -> None:
    (app_dir / "tw_app_syntax.py").write_text("def broken(:\n")

    with pytest.raises(AppLoadError, match="importing app module 'tw_app_syntax' failed: Syntax"):
        load_app("tw_app_syntax")


@pytest.mark.parametrize("name", ["", "app.py", "my-app", "pkg/module", "module:attr", ".rel"])
def test_load_app_wants_a_module_name(name: str) -> None:
    with pytest.raises(AppLoadError, match="--app expects an importable module name"):
        load_app(name)
