"""Triage in a real browser (Debian chromium + axe-core): the worklist with filters, bulk
acknowledgement of yellow alerts, one click to the patient page at the alert, its chart and
answers, and resolving with errors shown next to the field — accessible (0 axe violations) and
without sideways scrolling on a desk and on a phone."""

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, Status
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, check_page, login
from tests.factories import evaluate

pytestmark = [pytest.mark.browser, pytest.mark.live]

LIVE_TIMEOUT = 30_000


@pytest.fixture
def triage_alerts(live_cast: Any) -> tuple[Alert, Alert]:
    """A red SpO2 alert and a yellow "contact me" alert for patient A, committed — before the
    browser starts (its event loop in this thread would stop the live push, which the pages
    do not need: they load the worklist from the database)."""
    cast = live_cast
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal("87"), unit="%",
                                     effective_at=timezone.now() - timedelta(hours=2), source=Source.DEVICE)
    evaluate([reading.pk])
    response = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=[{"linkId": "contact", "text": "Vil du gerne kontaktes af os?", "answer": [{"valueBoolean": True}]}])
    response_evaluate(response_id=response.pk)
    return Alert.objects.get(severity="red"), Alert.objects.get(severity="yellow")


def _open_triage(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_worklist_with_filters_is_accessible_and_bulk_acknowledges_yellow(
        triage_alerts: tuple[Alert, Alert], new_context: Callable[..., BrowserContext], live_stack: Any,
        live_cast: Any, viewport: dict[str, int]) -> None:
    red, yellow = triage_alerts
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "clinician-a")
    _open_triage(page, live_stack.url + "/triage/")
    rows = page.locator("#alerts li.alert")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-id", str(red.pk))  # red first
    expect(rows.nth(0).locator(".badge")).to_have_text(re.compile(r"\S"))  # the colour in words too
    expect(rows.nth(0).locator(".findings")).to_contain_text("1")
    check_page(page, "/triage/ with a red and a yellow alert")

    # Filter with the form (a plain GET): only red; the live list keeps the filter.
    page.select_option("#f-severity", "red")
    page.locator("form.filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/triage/\?.*severity=red"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT)
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", str(red.pk))
    check_page(page, "/triage/?severity=red")

    _open_triage(page, live_stack.url + f"/triage/?program={live_cast.program_a.pk}&mine=1")
    expect(page.locator("#alerts .empty")).to_be_visible()
    check_page(page, "/triage/ filtered to nothing")

    # Bulk: tick the yellow one and acknowledge; the red one offers no tick box at all.
    _open_triage(page, live_stack.url + "/triage/")
    expect(page.locator(f"#alerts li[data-id='{red.pk}'] input[type=checkbox]")).to_have_count(0)
    page.locator(f"#alerts li[data-id='{yellow.pk}'] .pick").click()
    page.locator("form#bulk button[type=submit]").click()
    expect(page.locator(".messages")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT)
    expect(page.locator(f"#alerts li[data-id='{yellow.pk}']")).to_have_class(re.compile(r"\backnowledged\b"))
    assert Alert.objects.get(pk=yellow.pk).status == Status.ACKNOWLEDGED
    assert Alert.objects.get(pk=red.pk).status == Status.OPEN
    check_page(page, "/triage/ after bulk acknowledgement")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_patient_page_at_the_alert_is_accessible_and_resolving_shows_errors_by_the_field(
        triage_alerts: tuple[Alert, Alert], new_context: Callable[..., BrowserContext], live_stack: Any,
        live_cast: Any, viewport: dict[str, int]) -> None:
    red, yellow = triage_alerts
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "clinician-a")
    _open_triage(page, live_stack.url + "/triage/")
    page.locator(f"#alerts li[data-id='{red.pk}'] a").click()
    expect(page).to_have_url(re.compile(rf"/patients/{live_cast.patient_a.pk}/#alert-{red.pk}$"))
    block = page.locator(f"#alert-{red.pk}")
    expect(block.locator("svg[role=img]")).to_have_count(1)
    expect(block.locator("table.findings tbody tr")).to_have_count(1)
    expect(page.locator(f"#alert-{yellow.pk} .answers-behind")).to_contain_text("Vil du gerne kontaktes af os?")
    check_page(page, "the patient page with alerts")
    if viewport == DESKTOP:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "patient-alert.png"), full_page=True)

    # "No action needed" without a note: the error is next to the note field, nothing stored.
    block.locator("details.alert-more > summary").click()  # the alert's details and actions fold
    block.locator("details.action summary").first.click()
    block.locator(f"input[name='resolve-{red.pk}-outcome'][value='no-action']").check()
    block.locator("details.action form button[type=submit]").first.click()
    note = page.locator(f"#id_resolve-{red.pk}-note")
    expect(note).to_be_visible()
    expect(page.locator(".has-error", has=note).locator(".errors")).to_be_visible()
    assert Alert.objects.get(pk=red.pk).status == Status.OPEN
    check_page(page, "the patient page with a resolve error")

    note.fill("Known COPD, stable; called yesterday")
    page.locator(f"form[action$='/alerts/{red.pk}/resolve/'] button[type=submit]").click()
    expect(page.locator(".messages")).to_be_visible()
    expect(page.locator(f"#alert-{red.pk}")).to_have_count(0)
    resolved = Alert.objects.get(pk=red.pk)
    assert resolved.status == Status.RESOLVED and resolved.outcome == "no-action"
    check_page(page, "the patient page after resolving")


@pytest.fixture
def busy_worklist(live_cast: Any) -> dict[str, Any]:
    """Fourteen patients of team A with open alerts; one of them (the first) has three."""
    from alerts.models import Rule, Severity
    from tests.factories import make_patient

    cast = live_cast
    red_rule = cast.program_a.rules.get(kind="threshold")
    yellow_rule = cast.program_a.rules.get(kind="answer")
    extra_rule = Rule.objects.create(program=cast.program_a, kind="threshold", name="Pulse above 120",
                                     severity=Severity.RED, params={"measure": "pulse", "high": 120})
    now = timezone.now()
    patients = [cast.patient_a] + [
        make_patient(f"patient-{i}", f"{10 + i}0660-{1000 + i}", cast.team_a, cast.program_a,
                     given_name=f"Patient{i:02d}") for i in range(13)]
    for i, p in enumerate(patients):
        rule = red_rule if i % 3 == 0 else yellow_rule
        Alert.objects.create(patient=p, rule=rule, rule_version=1, severity=rule.severity,
                             reason=f"{rule.name}: value {80 + i}", evidence={}, source_key=f"t:{i}",
                             raised_at=now - timedelta(minutes=10 * (i + 1)))
    first = patients[0]
    Alert.objects.create(patient=first, rule=yellow_rule, rule_version=1, severity=Severity.YELLOW,
                         reason="Asks to be contacted", evidence={}, source_key="t:a2")
    Alert.objects.create(patient=first, rule=extra_rule, rule_version=1, severity=Severity.RED,
                         reason="Pulse 131/min, above 120", evidence={}, source_key="t:a3")
    return {"patients": patients, "first": first}


def test_the_worklist_shows_at_least_twelve_patients_on_a_1440_by_900_screen_one_row_each(
        busy_worklist: dict[str, Any], new_context: Callable[..., BrowserContext], live_stack: Any) -> None:
    page = new_context({"width": 1440, "height": 900}).new_page()
    login(page, live_stack.url, "clinician-a")
    _open_triage(page, live_stack.url + "/triage/")
    rows = page.locator("#alerts tr.patient")
    expect(rows).to_have_count(14)
    # One patient's three alerts are one row: worst first, with the count and every reason.
    first = page.locator(f"#alerts tr.patient[data-patient='{busy_worklist['first'].pk}']")
    expect(first.locator("li.alert")).to_have_count(3)
    expect(first.locator("td.count")).to_have_text("3")
    expect(first.locator("td.cpr")).to_have_text(busy_worklist["first"].cpr)
    expect(first).to_have_class(re.compile(r"\bred\b"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "triage-1440x900.png"))
    visible = page.evaluate(
        "() => [...document.querySelectorAll('#alerts tr.patient')]"
        "  .filter(r => { const b = r.getBoundingClientRect(); return b.top >= 0 && b.bottom <= innerHeight; })"
        "  .length")
    assert visible >= 12, f"only {visible} patients fit on a 1440×900 screen"
    check_page(page, "/triage/ with 14 patients")


def test_a_red_alert_is_acknowledged_from_the_list_only_after_the_confirmation(
        triage_alerts: tuple[Alert, Alert], new_context: Callable[..., BrowserContext], live_stack: Any) -> None:
    red, yellow = triage_alerts
    page = new_context({"width": 1440, "height": 900}).new_page()
    login(page, live_stack.url, "clinician-a")
    _open_triage(page, live_stack.url + "/triage/")
    dialog = page.locator("dialog#confirm-red")
    expect(dialog).to_be_hidden()
    page.locator(f"#alerts li.alert[data-id='{red.pk}'] button.ack").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(re.compile(r"eskalering", re.I))  # Danish, like the users
    page.keyboard.press("Escape")  # closing the dialog any way but the button is a no
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(500)
    assert Alert.objects.get(pk=red.pk).status == Status.OPEN
    page.locator(f"#alerts li.alert[data-id='{red.pk}'] button.ack").click()
    page.locator("#confirm-red-yes").click()
    expect(page.locator(f"#alerts li.alert[data-id='{red.pk}']")).to_have_class(re.compile(r"\backnowledged\b"))
    assert Alert.objects.get(pk=red.pk).status == Status.ACKNOWLEDGED
    # A yellow one needs no dialog.
    page.locator(f"#alerts li.alert[data-id='{yellow.pk}'] button.ack").click()
    expect(page.locator(f"#alerts li.alert[data-id='{yellow.pk}']")).to_have_class(re.compile(r"\backnowledged\b"))
    expect(dialog).to_be_hidden()
