"""Every page a patient uses, on a small phone and with large text (issue 19, item 7): no sideways
scrolling at 320 px wide or at 200 % text (WCAG 1.4.4 and 1.4.10), axe-core clean, the header a
menu that opens without JavaScript, PHQ-9's question stem in view beside each question, and an
empty page's error summary one line with the count. And the clinician's patient page: alert
details folded, and a snooze under one alert leaves every other alert open."""

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
from questionnaires.library import load
from questionnaires.models import QuestionnaireResponse
from questionnaires.services import questionnaire_import, response_draft_save
from tests.browser.conftest import ARTIFACTS, PHONE, assert_accessible, assert_no_horizontal_scroll, login
from tests.factories import evaluate, response_items

pytestmark = [pytest.mark.browser, pytest.mark.live]

SMALL_PHONE = {"width": 320, "height": 640}
NURSE = {"width": 1440, "height": 900}
# The browser's text size doubled: site.css sets the root to 112.5 % of the browser's size, so
# 200 % text is 225 % of the page's own default (what Chrome's "text size 200 %" gives).
# Set through the CSSOM: the page's Content-Security-Policy refuses an injected <style> element, as
# it should (a stylesheet added by a test would be one added by an attacker), but not this.
LARGE_TEXT = "document.documentElement.style.setProperty('font-size', '225%', 'important')"
SHOTS = ARTIFACTS / "phone"


@pytest.fixture
def phq9(live_cast: Any) -> Any:
    """PHQ-9 for patient A (a page of nine same-scale questions), one answered response and a few
    readings, so that "My answers" and "My readings" have charts and tables to lay out."""
    cast = live_cast
    phq9 = questionnaire_import(resource=load("phq-9"))
    cast.program_a.questionnaires.add(phq9)
    QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=response_items(cast.questionnaire, {"breathless": "same", "swelling": False, "pillows": 1,
                                                   "contact": False}))
    # A draft of the daily questionnaire, so that its review page shows (without one it sends the
    # patient to the first page).
    response_draft_save(patient=cast.patient_a, questionnaire=cast.questionnaire, current_page=1,
                        author=cast.patient_a.user,
                        items=response_items(cast.questionnaire, {"breathless": "bit-worse", "swelling": True,
                                                                  "pillows": 3, "contact": False}))
    for days, value in ((3, "95"), (2, "93"), (1, "94")):
        Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal(value), unit="%",
                               effective_at=timezone.now() - timedelta(days=days), source=Source.WEB)
    return phq9


def _patient_pages(base: str, cast: Any, phq9: Any) -> list[tuple[str, str]]:
    q = cast.questionnaire.pk
    return [
        ("home", "/me/"),
        ("questionnaire page", f"/me/questionnaires/{q}/page/1/"),
        ("PHQ-9 page", f"/me/questionnaires/{phq9.pk}/page/1/"),
        ("review", f"/me/questionnaires/{q}/review/"),
        ("receipt", f"/me/questionnaires/{q}/thanks/"),
        ("my answers", "/me/answers/"),
        ("readings new", "/me/readings/new/"),
        ("readings new spo2", "/me/readings/new/spo2/"),
        ("my readings", "/me/readings/"),
        ("my readings spo2", "/me/readings/spo2/"),
        ("relatives", "/me/relatives/"),
    ]


def _visit(page: Page, url: str, large_text: bool) -> None:
    page.goto(url)
    if large_text:
        page.evaluate(LARGE_TEXT)
    page.wait_for_load_state("load")


def _fits(page: Page, label: str) -> None:
    assert_no_horizontal_scroll(page, label)
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"{label}: scrollWidth {sizes[0]} > innerWidth {sizes[1]}"


@pytest.mark.parametrize(("viewport", "large_text"), [(PHONE, True), (SMALL_PHONE, False), (SMALL_PHONE, True)],
                         ids=["390px-200pct-text", "320px", "320px-200pct-text"])
def test_every_patient_page_fits_a_small_phone_and_large_text_without_sideways_scrolling(
        phq9: Any, new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any,
        viewport: dict[str, int], large_text: bool) -> None:
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "patient-a")
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = f"{viewport['width']}{'-200' if large_text else ''}"
    for label, path in _patient_pages(live_stack.url, live_cast, phq9):
        _visit(page, live_stack.url + path, large_text)
        expect(page.locator("h1")).to_be_visible()
        assert page.url == live_stack.url + path, f"{label}: {path} went to {page.url}"
        _fits(page, f"{label} ({size})")
        assert_accessible(page, f"{label} ({size})")
        page.screenshot(path=str(SHOTS / f"{size}-{label.replace(' ', '-')}.png"))
    # The menu open, and an empty page sent: both must fit too.
    _visit(page, live_stack.url + "/me/", large_text)
    page.locator("details.menu > summary").click()
    expect(page.locator("details.menu nav a[href='/me/answers/']")).to_be_visible()
    _fits(page, f"home with the menu open ({size})")
    assert_accessible(page, f"home with the menu open ({size})")
    page.screenshot(path=str(SHOTS / f"{size}-menu-open.png"))
    _visit(page, live_stack.url + f"/me/questionnaires/{phq9.pk}/page/1/", large_text)
    page.locator("main form button[value=next]").click()
    expect(page.locator("#form-errors")).to_be_visible()
    if large_text:
        page.evaluate(LARGE_TEXT)
    _fits(page, f"PHQ-9 page with errors ({size})")
    assert_accessible(page, f"PHQ-9 page with errors ({size})")
    page.screenshot(path=str(SHOTS / f"{size}-phq9-errors.png"), full_page=False)


def test_on_a_phone_the_header_is_a_menu_that_opens_without_javascript(
        browser: Any, live_stack: Any, live_cast: Any) -> None:
    context = browser.new_context(viewport=PHONE, locale="da-DK", java_script_enabled=False)
    page = context.new_page()
    login(page, live_stack.url, "patient-a")
    answers_link = page.locator("header a[href='/me/answers/']")
    expect(answers_link).to_be_hidden()
    page.locator("details.menu > summary").click()
    expect(answers_link).to_be_visible()
    answers_link.click()
    expect(page).to_have_url(live_stack.url + "/me/answers/")
    context.close()


def test_on_a_wide_screen_the_header_links_show_without_a_menu_button(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    page = new_context(NURSE).new_page()
    login(page, live_stack.url, "patient-a")
    expect(page.locator("details.menu > summary")).to_be_hidden()
    expect(page.locator("header a[href='/me/answers/']")).to_be_visible()


def test_an_empty_phq9_page_says_how_many_answers_are_missing_with_one_link_and_keeps_the_stem_in_view(
        phq9: Any, new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.goto(live_stack.url + f"/me/questionnaires/{phq9.pk}/page/1/")
    page.locator("main form button[value=next]").click()

    summary = page.locator("#form-errors")
    expect(summary).to_be_visible()
    expect(summary.locator("li")).to_have_count(1)
    expect(summary.locator("li")).to_contain_text("9")
    expect(summary.locator("li a")).to_have_attribute("href", "#id_q-phq9-1")
    # Every question beside the ninth still says what it is asking about.
    ninth = page.locator("fieldset#id_q-phq9-9")
    ninth.scroll_into_view_if_needed()
    expect(ninth.locator("legend .stem")).to_be_visible()
    expect(ninth.locator("legend .stem")).to_contain_text("2 uger")
    assert page.locator("legend .stem").count() == 9  # not on the "how difficult" question
    page.screenshot(path=str(SHOTS / "390-phq9-ninth.png"))


@pytest.fixture
def two_alerts(live_cast: Any) -> tuple[Alert, Alert]:
    """A red SpO2 alert and a yellow "contact me" alert, made before the browser starts (its
    event loop in this thread would refuse the live push that evaluation sends)."""
    cast = live_cast
    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal("88"), unit="%",
                                     effective_at=timezone.now() - timedelta(minutes=5), source=Source.DEVICE)
    evaluate([reading.pk])
    response = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=[{"linkId": "contact", "text": "Vil du gerne kontaktes af os?", "answer": [{"valueBoolean": True}]}])
    response_evaluate(response_id=response.pk)
    return (Alert.objects.get(patient=cast.patient_a, rule__kind="threshold"),
            Alert.objects.get(patient=cast.patient_a, rule__kind="answer"))


def test_a_nurse_snoozes_from_one_alert_and_every_other_alert_stays_open(
        two_alerts: tuple[Alert, Alert], new_context: Callable[..., BrowserContext], live_stack: Any,
        live_cast: Any) -> None:
    spo2, contact = two_alerts
    page = new_context(NURSE).new_page()
    login(page, live_stack.url, "clinician-a")
    page.goto(live_stack.url + f"/patients/{live_cast.patient_a.pk}/")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "nurse-patient-page.png"), full_page=True)
    assert_accessible(page, "the patient page")

    panel = page.locator(f"#alert-{spo2.pk}")
    contact_panel = page.locator(f"#alert-{contact.pk}")
    expect(panel.locator("details.alert-more")).not_to_have_attribute("open", re.compile(".*"))
    expect(contact_panel.locator("form[action$='/snooze/']")).to_have_count(0)
    panel.locator("details.alert-more > summary").click()
    panel.locator("summary", has_text=re.compile("forventet niveau|expected level")).click()
    resolve = panel.locator(f"input[name='snooze-{spo2.pk}-resolve']")
    expect(resolve).not_to_be_checked()
    expect(panel.locator(f"select[name='snooze-{spo2.pk}-measure']")).to_have_value("spo2")
    panel.locator(f"input[name='snooze-{spo2.pk}-low']").fill("86")
    panel.locator(f"input[name='snooze-{spo2.pk}-high']").fill("91")
    panel.locator(f"textarea[name='snooze-{spo2.pk}-reason']").fill("KOL, vanligt niveau")
    page.screenshot(path=str(SHOTS / "nurse-snooze-open.png"), full_page=False)
    panel.locator("form[action$='/snooze/'] button[type=submit]").click()
    expect(page.locator("#snoozes")).to_contain_text("KOL, vanligt niveau")

    assert Alert.objects.get(pk=spo2.pk).status != Status.RESOLVED
    assert Alert.objects.get(pk=contact.pk).status != Status.RESOLVED
    assert Alert.objects.exclude(status=Status.RESOLVED).count() == 2
    assert_accessible(page, "the patient page after a snooze")


def test_the_nurses_patient_page_is_accessible_and_fits_a_phone_too(
        two_alerts: tuple[Alert, Alert], new_context: Callable[..., BrowserContext], live_stack: Any,
        live_cast: Any) -> None:
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "clinician-a")
    page.goto(live_stack.url + f"/patients/{live_cast.patient_a.pk}/")
    _fits(page, "the patient page on a phone")
    assert_accessible(page, "the patient page on a phone")


