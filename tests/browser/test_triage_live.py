"""The live triage worklist in real browsers: an alert raised by a device reading reaches every
open triage page of the patient's team without a reload (through the real Celery worker and
Redis in the production shape), never another team's, and an acknowledgement on one page shows
on the others. Also: the page recovers from a dropped websocket and catches up on what it missed."""

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from accounts.models import Role
from alerts.models import Alert
from tests.browser.conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_no_horizontal_scroll,
    login,
)
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live]

LIVE_TIMEOUT = 30_000  # ms: production shape goes web -> Redis -> Celery worker -> Redis -> web


def open_triage(context: BrowserContext, base_url: str, username: str) -> Page:
    page = context.new_page()
    login(page, base_url, username)
    expect(page).to_have_url(base_url + "/triage/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT)
    return page


def post_spo2(live_stack: Any, token: str, value: int) -> dict[str, Any]:
    status, body = live_stack.request(
        "POST", "/api/v1/readings",
        {"measure": "spo2", "value": value, "unit": "%", "effective_at": datetime.now(UTC).isoformat()},
        {"Authorization": f"Bearer {token}"},
    )
    assert status == 201, body
    return body


def test_alert_reaches_the_team_live_and_acknowledgement_is_shared(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    colleague = make_user("clinician-a2", Role.CLINICIAN)
    live_cast.team_a.members.add(colleague)

    page_a = open_triage(new_context(), live_stack.url, "clinician-a")
    page_a2 = open_triage(new_context(PHONE), live_stack.url, "clinician-a2")
    page_b = open_triage(new_context(), live_stack.url, "clinician-b")
    for page in (page_a, page_a2, page_b):
        expect(page.locator("#alerts li.alert")).to_have_count(0)
        expect(page.locator("#alerts .empty")).to_be_visible()

    reading = post_spo2(live_stack, live_cast.device_token_a, 85)

    team_a_pages = (page_a, page_a2)
    for page in team_a_pages:
        alert = page.locator("#alerts li.alert")
        expect(alert).to_have_count(1, timeout=LIVE_TIMEOUT)
        expect(alert).to_have_class(re.compile(r"\bred\b.*\bopen\b"))
        expect(alert.locator(".badge.red")).to_be_visible()
        expect(alert.locator(".reason")).to_contain_text("85")
        row = page.locator(f"#alerts tr.patient[data-patient='{live_cast.patient_a.pk}']")
        expect(row.locator("a.patient-name")).to_have_text(live_cast.patient_a.name)
        expect(row.locator("td.cpr")).to_have_text(live_cast.patient_a.cpr)
        expect(alert.locator("button.ack")).to_be_visible()
        # Announced as it arrives: read out, highlighted with a word, counted in the tab title.
        expect(page.locator("#announce")).to_contain_text("85")
        expect(row).to_have_class(re.compile(r"\bchanged\b"))
        expect(row.locator(".change-tag")).to_be_visible()
        expect(page).to_have_title(re.compile(r"^\(1\) "))

    db_alert = Alert.objects.get()
    assert db_alert.patient_id == live_cast.patient_a.pk and db_alert.severity == "red"
    assert db_alert.evidence["reading_id"] == reading["id"]
    for page in team_a_pages:
        expect(page.locator(f"#alerts li.alert[data-id='{db_alert.pk}']")).to_have_count(1)

    # Accessible with an alert shown, and usable on the phone as well as the desk.
    assert_accessible(page_a, "/triage/ with an open alert")
    assert_no_horizontal_scroll(page_a2, "/triage/ on a phone with an open alert")
    ARTIFACTS.mkdir(exist_ok=True)
    page_a.screenshot(path=str(ARTIFACTS / "triage.png"), full_page=True)
    page_a2.screenshot(path=str(ARTIFACTS / "triage-phone.png"), full_page=True)

    # A red alert asks first, saying that its escalation stops; cancelling changes nothing.
    ack = page_a.locator(f"#alerts li.alert[data-id='{db_alert.pk}'] button.ack")
    ack.click()
    dialog = page_a.locator("dialog#confirm-red")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(live_cast.patient_a.name)
    assert_accessible(page_a, "/triage/ asking before a red alert's escalation stops")
    page_a.screenshot(path=str(ARTIFACTS / "triage-confirm-red.png"))
    dialog.locator("#confirm-red-no").click()
    expect(dialog).to_be_hidden()
    page_a.wait_for_timeout(500)
    db_alert.refresh_from_db()
    assert db_alert.status == "open"
    ack.click()
    dialog.locator("#confirm-red-yes").click()
    # Marked as seen: the highlight and the count in the title go.
    page_a.locator("#seen").click()
    expect(page_a).not_to_have_title(re.compile(r"^\("))
    expect(page_a.locator("#alerts tr.changed")).to_have_count(0)
    for page in team_a_pages:
        alert = page.locator(f"#alerts li.alert[data-id='{db_alert.pk}']")
        expect(alert).to_have_class(re.compile(r"\backnowledged\b"), timeout=LIVE_TIMEOUT)
        expect(alert.locator(".state")).to_contain_text("(clinician-a)")
        expect(alert.locator("button.ack")).to_have_count(0)
    db_alert.refresh_from_db()
    assert db_alert.status == "acknowledged" and db_alert.acknowledged_by_id == live_cast.clinician_a.pk
    assert_accessible(page_a2, "/triage/ with an acknowledged alert")
    page_a.screenshot(path=str(ARTIFACTS / "triage-acknowledged.png"), full_page=True)

    # Team B never saw any of it: not live, and not after a reload either.
    expect(page_b.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page_b.locator("#alerts li.alert")).to_have_count(0)
    page_b.reload()
    expect(page_b.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT)
    expect(page_b.locator("#alerts li.alert")).to_have_count(0)
    expect(page_b.locator("#alerts")).not_to_contain_text(live_cast.patient_a.name)


# Records every WebSocket the page opens, so a test can drop one; while window.__blockWs is
# true, new sockets go to a closed port (the server is "unreachable").
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__blockWs = false;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      // Blocked: the same origin (the CSP's connect-src allows no other), a path nothing serves.
      super(window.__blockWs ? String(url).replace(/\/ws\/alerts\/.*$/, "/ws/nowhere/") : url, protocols);
      window.__sockets.push(this);
    }
  };
})();
"""


def test_triage_page_recovers_from_a_dropped_socket(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    context = new_context(DESKTOP)
    context.add_init_script(TRACK_SOCKETS)
    page = open_triage(context, live_stack.url, "clinician-a")
    status = page.locator("#live-status")

    # Drop the connection and keep the server unreachable for a while.
    page.evaluate("() => { window.__blockWs = true; window.__sockets.at(-1).close(); }")
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_contain_text(re.compile(r"\S"))
    # It keeps trying: at least one attempt has already failed against the unreachable server.
    page.wait_for_function("() => window.__sockets.length >= 2 && window.__sockets.at(-1).readyState === 3")

    # Meanwhile an alert is raised; its live push cannot reach this page.
    post_spo2(live_stack, live_cast.device_token_a, 84)
    deadline = time.monotonic() + LIVE_TIMEOUT / 1000
    while not Alert.objects.exists():
        assert time.monotonic() < deadline, "no alert was raised"
        time.sleep(0.2)
    expect(page.locator("#alerts li.alert")).to_have_count(0)
    expect(status).to_have_attribute("data-state", "reconnecting")

    # The server is back: the page reconnects by itself and the snapshot brings the missed alert.
    page.evaluate("() => { window.__blockWs = false; }")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT)
    alert = page.locator("#alerts li.alert")
    expect(alert).to_have_count(1, timeout=LIVE_TIMEOUT)
    expect(alert.locator(".reason")).to_contain_text("84")
    # Arrived while the page was away: announced as new all the same.
    expect(page.locator("#announce")).to_contain_text("84")
    page.locator("#seen").click()
    expect(page.locator("#alerts tr.changed")).to_have_count(0)

    # And the new socket carries live updates again: a new low value joins the open alert (one
    # alert per patient and rule while unresolved) as its latest finding.
    post_spo2(live_stack, live_cast.device_token_a, 83)
    expect(alert.locator(".reason")).to_contain_text("83", timeout=LIVE_TIMEOUT)
    expect(alert.locator(".findings")).to_contain_text("2")
    expect(page.locator("#alerts li.alert")).to_have_count(1)
    # The open alert got worse: no longer silently: highlighted as worsened, read out, counted.
    row = page.locator("#alerts tr.patient")
    expect(row).to_have_class(re.compile(r"\bchanged\b"))
    expect(row.locator(".change-tag")).to_have_text(re.compile(r"\S"))
    expect(page.locator("#announce")).to_contain_text("83")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    # One socket at the start, at least one failed attempt while blocked, the one now open.
    assert page.evaluate("() => window.__sockets.length") >= 3
    assert page.evaluate("() => window.__sockets.at(-1).readyState") == 1


def test_an_escalation_notice_reaches_the_on_call_nurses_open_worklist(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any, settings: Any) -> None:
    from datetime import timedelta

    from channels.layers import channel_layers
    from django.utils import timezone

    from alerts.escalation import alerts_escalate
    from alerts.models import EscalationPolicy

    if not live_stack.production_shape:
        pytest.skip("the notice crosses processes through Redis: production shape only")
    EscalationPolicy.objects.create(care_team=live_cast.team_a, after=timedelta(minutes=5),
                                    on_call=live_cast.clinician_a)
    page = open_triage(new_context(), live_stack.url, "clinician-a")
    post_spo2(live_stack, live_cast.device_token_a, 85)
    expect(page.locator("#alerts li.alert")).to_have_count(1, timeout=LIVE_TIMEOUT)
    Alert.objects.update(raised_at=timezone.now() - timedelta(minutes=6))

    # The beat job runs here, in the test process, speaking to the stack's channel layer.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
        "hosts": [live_stack.env["REDIS_URL"]], "prefix": f"{live_stack.redis_prefix}:ch"}}}
    channel_layers.backends.clear()
    # In a thread of its own: Playwright's event loop runs in this one, and the transport's
    # async_to_sync refuses to run inside a running loop.
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(_escalate_in_thread, alerts_escalate).result(timeout=60)
    finally:
        channel_layers.backends.clear()

    notice = page.locator("#notices .notice.escalation")
    expect(notice).to_have_count(1, timeout=LIVE_TIMEOUT)
    expect(notice).to_contain_text("Team A")
    assert "Alma" not in notice.inner_text()  # no patient in a notice
    assert_accessible(page, "the worklist with an escalation notice")


def _escalate_in_thread(alerts_escalate: Callable[[], Any]) -> Any:
    from django.db import connection

    try:
        return alerts_escalate()
    finally:
        connection.close()
