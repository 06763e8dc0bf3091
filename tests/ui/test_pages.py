"""The web UI over HTTP (no browser): sessions, CSRF, scopes, headers, what each page
shows, and a 4xx page for every bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.helpers import START, Scope, TenantKey
from tests.ui.conftest import ADMIN_TOKEN, TestClient, csrf_of, sign_in
from tickwork import ui
from tickwork.api.app import create_app
from tickwork.services import tenants
from tickwork.services.context import Context
from tickwork.testing import FakeClock

Make = Callable[..., dict[str, Any]]
SignedIn = Callable[[str], TestClient]


def page_of(scope: Scope, trigger: dict[str, Any]) -> str:
    return f"/ui/projects/{scope.project}/agents/{scope.agent}/triggers/{trigger['id']}"


def post(client: TestClient, url: str, **fields: str) -> Any:
    """Post a page's form as a browser does: with the CSRF token the page carries."""
    token = csrf_of(client.get("/ui/projects").text)
    return client.post(url, data={"csrf": token, **fields})


# -- sign-in, the session and the headers -------------------------------------------------------


def test_the_sign_in_form_has_its_labelled_field_and_button(
    clients: Callable[..., TestClient],
) -> None:
    page = clients().get("/ui/login")
    assert page.status_code == 200
    assert '<label for="api_key">API key</label>' in page.text
    assert '<button type="submit">Sign in</button>' in page.text
    assert 'name="csrf"' in page.text


def test_every_page_sends_a_csp_without_inline_script_and_refuses_framing(
    signed_in: SignedIn, scope: Scope
) -> None:
    client = signed_in("write")
    for url in ("/ui/login", "/ui/projects", f"/ui/projects/{scope.project}", "/ui/static/ui.js"):
        answer = client.get(url)
        assert answer.status_code == 200, url
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    html = client.get(f"/ui/projects/{scope.project}").text
    assert "<script>" not in html
    assert "style=" not in html
    assert "<style" not in html


def test_the_session_cookie_is_signed_httponly_samesite_strict_with_an_expiry(
    clients: Callable[..., TestClient], keys: dict[str, str]
) -> None:
    client = clients()
    page = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": keys["read"]})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/projects"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("tickwork_session=")
    )
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert f"max-age={8 * 3600}" in flags
    assert "path=/ui" in flags
    assert keys["read"] not in cookie  # the key itself is never in the cookie


def test_a_wrong_key_is_refused_and_starts_no_session(clients: Callable[..., TestClient]) -> None:
    client = clients()
    page = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": "tw_nope"})
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert "tickwork_session" not in answer.headers.get("set-cookie", "")


def test_sign_in_without_the_forms_csrf_token_is_refused(
    clients: Callable[..., TestClient], keys: dict[str, str]
) -> None:
    client = clients()
    client.get("/ui/login")
    answer = client.post("/ui/login", data={"api_key": keys["write"]})
    assert answer.status_code == 403
    answer = client.post("/ui/login", data={"csrf": "forged", "api_key": keys["write"]})
    assert answer.status_code == 403


def test_pages_send_a_visitor_without_a_session_to_sign_in(
    clients: Callable[..., TestClient],
) -> None:
    client = clients()
    for url in ("/ui/", "/ui/projects", "/ui/projects/p", "/ui/system"):
        answer = client.get(url)
        assert answer.status_code == 303, url
        assert answer.headers["location"] == "/ui/login"
    client.cookies.set("tickwork_session", "forged.cookie.value", path="/ui")
    assert client.get("/ui/projects").headers["location"] == "/ui/login"


def test_a_revoked_key_ends_its_sessions_at_once(
    ui_ctx: Context, signed_in: SignedIn, acme: TenantKey
) -> None:
    client = signed_in("write")
    assert client.get("/ui/projects").status_code == 200
    tenants.revoke_key(ui_ctx, "acme", acme.key_id)
    assert client.get("/ui/projects").headers["location"] == "/ui/login"


def test_an_expired_session_signs_in_again(
    ui_app: Any, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sign_in(TestClient(ui_app, follow_redirects=False), keys["read"])
    sessions = ui_app.state.ui_sessions
    monkeypatch.setattr(sessions, "max_age", -1)
    assert client.get("/ui/projects").headers["location"] == "/ui/login"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(signed_in: SignedIn) -> None:
    client = signed_in("read")
    assert client.post("/ui/logout", data={}).status_code == 403
    answer = post(client, "/ui/logout")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?notice=signed-out"
    assert 'tickwork_session=""' in answer.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/ui/projects").status_code == 303


def test_the_admin_token_signs_in_to_the_scheduler_and_deployments_view(
    clients: Callable[..., TestClient],
) -> None:
    client = sign_in(clients(), ADMIN_TOKEN)
    assert client.get("/ui/").headers["location"] == "/ui/system"
    page = client.get("/ui/system")
    assert page.status_code == 200
    assert "<h1>Scheduler and deployments</h1>" in page.text
    assert "Deployments" in page.text
    assert client.get("/ui/projects").status_code == 403


def test_a_key_does_not_see_the_admins_view(signed_in: SignedIn) -> None:
    assert signed_in("write").get("/ui/system").status_code == 403


def test_the_ui_is_not_in_the_openapi_document(clients: Callable[..., TestClient]) -> None:
    document = clients().get("/openapi.json").json()
    assert not [path for path in document["paths"] if path.startswith("/ui")]


# -- scopes and CSRF on the buttons ---------------------------------------------------------------


def test_a_read_key_sees_no_action_button_and_is_refused_if_it_posts(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    trigger = make_trigger()
    client = signed_in("read")
    page = client.get(page_of(scope, trigger))
    assert page.status_code == 200
    for name in ("Run now", "Pause", "Resume", "Skip next", "Backfill", "Cancel", "Rerun"):
        assert f">{name}</button>" not in page.text
    for action in ("run", "skip", "resume"):
        assert post(client, f"{page_of(scope, trigger)}/{action}").status_code == 403
    assert post(client, f"{page_of(scope, trigger)}/pause", reason="x").status_code == 403


def test_an_operate_key_sees_the_buttons(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    page = signed_in("operate").get(page_of(scope, make_trigger())).text
    for name in ("Run now", "Pause", "Skip next", "Backfill"):
        assert f">{name}</button>" in page
    assert '<label for="reason">Reason</label>' in page


def test_a_button_without_the_sessions_csrf_token_is_refused(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, api: TestClient
) -> None:
    trigger = make_trigger()
    client = signed_in("write")
    url = f"{page_of(scope, trigger)}/run"
    assert client.post(url, data={}).status_code == 403
    assert client.post(url, data={"csrf": "guess"}).status_code == 403
    assert client.post(url, json={"csrf": "x"}).status_code == 415
    assert api.get(scope.invocations(trigger["id"])).json()["items"] == []


# -- the pages -------------------------------------------------------------------------------------


def test_the_triggers_table_shows_schedule_zone_next_run_last_run_and_state(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    make_trigger(name="berlin", cron_expression="30 10 * * *", timezone="Europe/Berlin")
    client = signed_in("read")
    page = client.get(f"/ui/projects/{scope.project}").text
    for column in ("Name", "Agent", "Schedule", "Timezone", "Next run", "Last run", "Health"):
        assert f'<th scope="col">{column}</th>' in page
    assert ">berlin</a>" in page
    assert "Europe/Berlin" in page
    # 09:00 UTC on 2 March is 10:00 in Berlin: the next run is at 10:30 there, in 30 min.
    assert "2026-03-02 10:30:00 CET (UTC+01:00)" in page
    assert "in 30 min" in page
    assert "never run" in page
    assert "<td>ok</td>" in page  # its health
    assert "enabled" in page


def test_the_triggers_table_filters_by_state_and_name(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    make_trigger(name="alpha")
    make_trigger(name="beta")
    client = signed_in("write")
    beta = client.get(f"/ui/projects/{scope.project}?q=bet").text
    assert ">beta</a>" in beta
    assert ">alpha</a>" not in beta
    assert ">alpha</a>" not in client.get(f"/ui/projects/{scope.project}?state=paused").text


def test_an_empty_project_shows_how_to_create_an_agent_and_a_trigger(
    signed_in: SignedIn, api: TestClient, acme: TenantKey
) -> None:
    assert api.put(f"/api/v1/tenants/{acme.tenant}/projects/empty").status_code == 201
    page = signed_in("write").get("/ui/projects/empty").text
    assert "Nothing scheduled yet" in page
    assert "curl -X PUT" in page
    assert "/api/v1/tenants/acme/projects/empty" in page
    assert "tickwork.Client(" in page
    assert "client.triggers.create(" in page


def test_the_preview_marks_the_change_of_utc_offset_at_dst(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 3, 26, 12, 0, tzinfo=UTC))
    trigger = make_trigger(name="daily", cron_expression="0 9 * * *", timezone="Europe/Berlin")
    page = signed_in("read").get(page_of(scope, trigger)).text
    assert "2026-03-28 09:00:00 CET (UTC+01:00)" in page
    assert "2026-03-29 09:00:00 CEST (UTC+02:00)" in page
    assert "UTC offset changes from +01:00 to +02:00" in page
    assert page.count("UTC offset changes") == 1


def test_the_preview_shows_the_slots_a_calendar_skips_or_shifts_and_why(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 12, 20, 12, 0, tzinfo=UTC))
    skipping = make_trigger(
        name="standup",
        cron_expression="0 9 * * *",
        timezone="America/New_York",
        calendar={"holidays": "US", "shift": "skip"},
    )
    page = signed_in("read").get(page_of(scope, skipping)).text
    assert "Slots the trigger's calendar skips or shifts" in page
    assert "2026-12-25 09:00:00 EST (UTC-05:00)" in page
    assert "skipped" in page
    assert "holiday: Christmas Day" in page

    shifting = make_trigger(
        name="close",
        cron_expression="0 9 25 12 *",
        timezone="America/New_York",
        calendar={"holidays": "US", "shift": "previous_business_day"},
    )
    page = signed_in("read").get(page_of(scope, shifting)).text
    assert "2026-12-24 09:00:00 EST (UTC-05:00)" in page
    assert "shifted" in page


def test_a_trigger_named_like_a_script_is_shown_as_text(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    trigger = make_trigger(name="<script>alert(1)</script>")
    client = signed_in("read")
    for url in (f"/ui/projects/{scope.project}", page_of(scope, trigger)):
        page = client.get(url).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_load_chart_counts_slots_per_minute_across_the_project(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    make_trigger(name="a", cron_expression="30 9 * * *")
    make_trigger(name="b", cron_expression="30 9 * * *")
    make_trigger(name="c", cron_expression="30 * * * *")
    page = signed_in("read").get(f"/ui/projects/{scope.project}/load").text
    assert '<svg role="img"' in page
    # From 09:00 UTC: the 09:30 minute has all three, every other half past one.
    assert "<title>09:30 UTC: 3 slots</title>" in page
    assert "<title>10:30 UTC: 1 slot</title>" in page
    assert "26 slots in the next 24 hours; at most 3 in one minute" in page


def test_upcoming_runs_lists_the_next_slots(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    make_trigger(name="soon")
    page = signed_in("read").get(f"/ui/projects/{scope.project}/upcoming").text
    assert ">soon</a>" in page
    assert "in 15 min" in page


# -- the buttons -----------------------------------------------------------------------------------


def test_run_now_pause_resume_and_skip_next_through_the_forms(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, api: TestClient
) -> None:
    trigger = make_trigger()
    client = signed_in("operate")
    url = page_of(scope, trigger)
    ran = post(client, f"{url}/run")
    assert ran.status_code == 303
    assert ran.headers["location"] == f"{url}?notice=ran"
    assert "Run started." in client.get(ran.headers["location"]).text
    [inv] = api.get(scope.invocations(trigger["id"])).json()["items"]
    assert inv["origin"] == "manual"
    page = client.get(url).text
    assert 'data-live="true"' in page
    assert ">Cancel</button>" in page

    assert post(client, f"{url}/pause", reason="").status_code == 422
    assert post(client, f"{url}/pause", reason="migrating the agent").status_code == 303
    shown = api.get(scope.trigger(trigger["id"])).json()
    assert shown["paused"] is True
    assert shown["paused_reason"] == "migrating the agent"
    assert "migrating the agent" in client.get(url).text
    assert ">Resume</button>" in client.get(url).text
    assert post(client, f"{url}/resume").status_code == 303
    assert api.get(scope.trigger(trigger["id"])).json()["paused"] is False

    assert post(client, f"{url}/skip").status_code == 303
    assert api.get(scope.trigger(trigger["id"])).json()["skip_remaining"] == 1


def test_cancel_and_rerun_an_invocation_through_the_forms(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, api: TestClient
) -> None:
    trigger = make_trigger()
    client = signed_in("operate")
    url = page_of(scope, trigger)
    post(client, f"{url}/run")
    [inv] = api.get(scope.invocations(trigger["id"])).json()["items"]
    assert post(client, f"{url}/invocations/{inv['id']}/cancel").status_code == 303
    assert api.get(scope.invocation(trigger["id"], inv["id"])).json()["status"] == "cancelled"
    detail = client.get(f"{url}/invocations/{inv['id']}").text
    assert ">Rerun</button>" in detail
    assert "Attempts" in detail
    assert post(client, f"{url}/invocations/{inv['id']}/rerun").status_code == 303
    origins = [i["origin"] for i in api.get(scope.invocations(trigger["id"])).json()["items"]]
    assert origins == ["rerun", "manual"]
    # Final already: cancelling again is a conflict, shown as a page.
    again = post(client, f"{url}/invocations/{inv['id']}/cancel")
    assert again.status_code == 409
    assert "text/html" in again.headers["content-type"]


def test_backfill_a_range_given_in_the_triggers_zone(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, api: TestClient
) -> None:
    trigger = make_trigger(timezone="Europe/Berlin")
    client = signed_in("operate")
    url = page_of(scope, trigger)
    # 08:00 to 10:00 in Berlin is 07:00 to 09:00 UTC: eight slots every 15 minutes.
    answer = post(
        client, f"{url}/backfill", **{"from": "2026-03-02T08:00", "to": "2026-03-02T10:00"}
    )
    assert answer.status_code == 303, answer.text
    [backfill] = api.get(f"{scope.trigger(trigger['id'])}/backfills").json()["items"]
    assert backfill["from"] == "2026-03-02T07:00:00Z"
    assert backfill["slots"] == 8
    assert "Backfills" in client.get(url).text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/ui/projects/" + "x" * 65, 422),
        ("/ui/projects/no%20space", 422),
        ("/ui/projects/nope", 404),
        ("/ui/projects/p?state=sleeping", 422),
        ("/ui/projects/p/agents/a/triggers/not-an-id", 422),
        ("/ui/projects/p/agents/a/triggers/trg_00000000000000000000000000", 404),
    ],
)
def test_bad_addresses_answer_a_4xx_page(
    signed_in: SignedIn, scope: Scope, url: str, status: int
) -> None:
    answer = signed_in("read").get(url)
    assert answer.status_code == status
    assert "text/html" in answer.headers["content-type"]
    assert f"Error {status}" in answer.text


def test_bad_filters_and_forms_answer_a_4xx_page(
    signed_in: SignedIn, scope: Scope, make_trigger: Make
) -> None:
    trigger = make_trigger()
    client = signed_in("write")
    url = page_of(scope, trigger)
    assert client.get(f"{url}?status=bogus").status_code == 422
    assert client.get(f"{url}/invocations?status=bogus").status_code == 422
    assert post(client, f"{url}/backfill", **{"from": "yesterday", "to": "x"}).status_code == 422
    future = {"from": "2026-03-02T08:00", "to": "2027-01-01T00:00"}
    assert post(client, f"{url}/backfill", **future).status_code == 422
    assert post(client, f"{url}/backfill", mode="some", **future).status_code == 422
    big = client.post(f"{url}/run", data={"csrf": "x" * 20_000})
    assert big.status_code == 413


def test_the_invocations_fragment_stops_polling_when_every_run_is_final(
    signed_in: SignedIn, scope: Scope, make_trigger: Make, ui_ctx: Context
) -> None:
    trigger = make_trigger()
    client = signed_in("operate")
    url = page_of(scope, trigger)
    assert 'data-live="false"' in client.get(f"{url}/invocations").text
    post(client, f"{url}/run")
    fragment = client.get(f"{url}/invocations")
    assert fragment.status_code == 200
    assert fragment.text.startswith('<div id="invocations"')
    assert 'data-live="true"' in fragment.text
    assert START.year == 2026


def test_replicas_with_one_session_secret_accept_each_others_sessions(
    ui_ctx: Context, keys: dict[str, str]
) -> None:
    ui_ctx.settings = ui_ctx.settings.with_(session_secret="shared-secret")
    first, second, other = create_app(ui_ctx), create_app(ui_ctx), create_app(ui_ctx)
    for app in (first, second):
        ui.install(app)
    ui_ctx.settings = ui_ctx.settings.with_(session_secret="another-secret")
    ui.install(other)
    signed = sign_in(TestClient(first, follow_redirects=False), keys["read"])
    cookie = signed.cookies.get("tickwork_session")
    assert cookie
    for app, status in ((second, 200), (other, 303)):
        client = TestClient(app, follow_redirects=False)
        client.cookies.set("tickwork_session", cookie, path="/ui")
        assert client.get("/ui/projects").status_code == status
