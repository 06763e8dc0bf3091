"""The web UI in a real browser (Debian's Chromium, driven by Playwright) against a real
``tickwork serve`` and a real webhook receiver, on the suite's database (SQLite or
PostgreSQL): the elements are found by role and accessible name, the names SPEC §12
lists. Set TICKWORK_UI_SCREENSHOTS to a folder to save a PNG of each page
(``make ui-screenshots`` writes docs/ui/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser import chromium
from tests.e2e.conftest import Api, Receiver, Server, wait_until
from tickwork.services import resources
from tickwork.services.context import Context

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ADMIN_TOKEN = "admin-token-for-the-browser"
TIMEOUT_MS = 15_000
SHOTS = os.environ.get("TICKWORK_UI_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        # Root in a container has no user namespace for Chromium's sandbox.
        launched = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


class Visit:
    """One browser tab on the server, recording what a test checks on every page: the
    hosts it asked, CSP reports, dialogs (none may open) and navigations."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.hosts: set[str] = set()
        self.csp_reports: list[str] = []
        self.dialogs: list[str] = []
        self.navigations = 0
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", lambda r: self.hosts.add(urlsplit(r.url).netloc))
        page.on(
            "console",
            lambda m: self.csp_reports.append(m.text) if "Content Security" in m.text else None,
        )
        page.on("dialog", self._dialog)
        page.on("framenavigated", self._navigated)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigations += 1

    def check(self, name: str) -> None:
        """No serious or critical axe-core violation on the page; its screenshot."""
        results = Axe().run(self.page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{name}: {bad}"
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)

    def sign_in(self, key: str, check: bool = False) -> None:
        self.page.goto(self.base + "/ui/")
        expect(self.page.get_by_role("heading", name="Sign in")).to_be_visible()
        if check:
            self.check("sign-in")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def ui_server(
    tickwork: Callable[..., tuple[Server, Api]], ctx: Context, receiver: Receiver
) -> tuple[Server, Api, str]:
    server, api = tickwork(TICKWORK_ADMIN_TOKEN=ADMIN_TOKEN)
    key = api.client.headers["Authorization"].removeprefix("Bearer ")
    return server, api, key


@pytest.fixture
def visit(browser: Browser, ui_server: tuple[Server, Api, str]) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Visit(context.new_page(), ui_server[0].url)
    context.close()


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command[:2]}: {done.stdout}\n{done.stderr}"


def _row(page: Page, text: str) -> Any:
    return page.get_by_role("row").filter(has_text=text)


def test_a_user_steers_a_trigger_in_the_browser(
    visit: Visit, ui_server: tuple[Server, Api, str], receiver: Receiver
) -> None:
    server, api, key = ui_server
    daily = api.create_trigger("bot", name="nightly report", cron_expression="0 3 * * *")
    api.create_trigger("bot", name="<script>alert(1)</script>", cron_expression="0 4 * * *")
    # A herd at 09:00 UTC for the load chart, and a monthly one whose preview crosses DST.
    for n in range(3):
        api.create_trigger("bot", name=f"standup {n}", cron_expression="0 9 * * *")
    api.create_trigger("bot", name="half-hourly sync", cron_expression="*/30 * * * *")
    monthly = api.create_trigger(
        "bot", name="monthly invoices", cron_expression="0 9 1 * *", timezone="Europe/Berlin"
    )
    page = visit.page

    visit.sign_in(key, check=True)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    visit.check("projects")
    page.get_by_role("link", name="proj", exact=True).click()
    expect(page.get_by_role("heading", name="Triggers of proj")).to_be_visible()
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader", name="Next run")).to_be_visible()
    expect(page.get_by_role("link", name="<script>alert(1)</script>")).to_be_visible()
    visit.check("triggers")

    page.get_by_label("Search by name").fill("nightly")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="<script>alert(1)</script>")).to_have_count(0)
    page.get_by_role("link", name="nightly report").click()
    expect(page.get_by_role("heading", name="Trigger nightly report")).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("The next 10 runs"))).to_be_visible()

    # Run now, by keyboard only: Tab to the button, Enter. Then the run completes and
    # its status changes on the page by itself, with no navigation.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Run now":
            break
    else:
        pytest.fail("Run now cannot be reached with the Tab key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Run started.")
    before = visit.navigations
    expect(_row(page, "manual").get_by_text("completed", exact=True)).to_be_visible()
    assert visit.navigations == before, "the status changed by reloading the page"
    wait_until(lambda: receiver.received("/ok"), what="the webhook call")

    page.get_by_label("Reason").fill("the report's agent is being migrated")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("the report's agent is being migrated")).to_be_visible()
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_have_text("Trigger resumed.")
    page.get_by_role("button", name="Skip next").click()
    expect(page.get_by_text("the next 1 run", exact=True)).to_be_visible()

    now = datetime.now(UTC)
    page.get_by_label("From").fill(f"{now - timedelta(days=3):%Y-%m-%dT%H:%M:%S}")
    page.get_by_label("To").fill(f"{now - timedelta(minutes=1):%Y-%m-%dT%H:%M:%S}")
    page.get_by_role("button", name="Backfill").click()
    expect(page.get_by_role("status")).to_have_text("Backfill started.")
    expect(page.get_by_role("table", name="The latest backfills of this trigger")).to_be_visible()
    wait_until(
        lambda: len([i for i in api.invocations(daily["id"]) if i["origin"] == "backfill"]) == 3,
        what="three backfilled slots",
    )
    expect(_row(page, "backfill").get_by_text("completed", exact=True)).to_have_count(3)
    visit.check("trigger")
    page.goto(f"{server.url}/ui/projects/proj/agents/bot/triggers/{monthly['id']}")
    expect(page.get_by_text(re.compile("UTC offset changes from"))).to_be_visible()
    visit.check("preview-dst")

    # Cancel a run that is still running, then rerun it.
    slow = api.create_trigger("slow", name="slow one", cron_expression="0 5 * * *")
    page.goto(f"{server.url}/ui/projects/proj/agents/slow/triggers/{slow['id']}")
    page.get_by_role("button", name="Run now").click()
    expect(_row(page, "manual").get_by_text("running", exact=True)).to_be_visible()
    _row(page, "manual").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_have_text("Invocation cancelled.")
    expect(_row(page, "manual").get_by_text("cancelled", exact=True)).to_be_visible()
    receiver.release.set()
    _row(page, "manual").get_by_role("button", name="Rerun").click()
    expect(page.get_by_role("status")).to_have_text("Rerun started.")
    expect(_row(page, "rerun").get_by_text("completed", exact=True)).to_be_visible()
    page.get_by_role("link", name=re.compile(r"^\d{4}-")).first.click()
    expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
    visit.check("invocation")

    page.goto(server.url + "/ui/projects/proj/upcoming")
    expect(page.get_by_role("table", name=re.compile("What runs next"))).to_be_visible()
    visit.check("upcoming")
    page.goto(server.url + "/ui/projects/proj/load")
    expect(page.get_by_role("img", name=re.compile("Slots per minute"))).to_be_visible()
    visit.check("load")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    page.goto(server.url + "/ui/projects")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    assert visit.dialogs == [], "a script ran from user data"
    assert visit.csp_reports == []
    assert visit.hosts == {urlsplit(server.url).netloc}


def test_the_admin_sees_the_scheduler_and_deployments(
    visit: Visit, ui_server: tuple[Server, Api, str]
) -> None:
    server, _, _ = ui_server
    visit.sign_in(ADMIN_TOKEN)
    page = visit.page
    expect(page.get_by_role("heading", name="Scheduler and deployments")).to_be_visible()
    expect(page.get_by_role("table", name="Every deployment, newest first")).to_contain_text(
        "active"
    )
    visit.check("scheduler")
    response = page.goto(server.url + "/ui/system")
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_the_first_screen_of_an_empty_project_teaches_curl_and_the_client(
    visit: Visit, ui_server: tuple[Server, Api, str], ctx: Context, receiver: Receiver
) -> None:
    """The examples an empty project shows work as written: run here, they make the
    agent and the trigger the page then lists."""
    server, _, key = ui_server
    resources.put_project(ctx, "acme", "fresh", None, None)
    visit.sign_in(key)
    page = visit.page
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.goto(server.url + "/ui/projects/fresh")
    expect(page.get_by_role("heading", name="Nothing scheduled yet")).to_be_visible()
    visit.check("first-screen")
    env = {**os.environ, "KEY": key}
    curl = page.locator("#example-curl").inner_text()
    _run(["bash", "-euc", curl], env)
    page.reload()
    expect(page.get_by_role("link", name="weekday digest")).to_be_visible()

    resources.put_project(ctx, "acme", "fresh2", None, None)
    page.goto(server.url + "/ui/projects/fresh2")
    code = page.locator("#example-python").inner_text()
    _run([sys.executable, "-c", code], env)
    page.reload()
    expect(page.get_by_role("link", name="weekday digest")).to_be_visible()
