"""Issue 19 in a real browser (Debian chromium + axe-core): the demo's case. A patient answers
PHQ-9 on a phone with only item 9 ("better off dead…") positive: the receipt leads with the
crisis advice and 112, and a red alert is on the clinician's worklist (/triage/) — raised by
the instrument's safety net, although the programme has no colour rule and the score is 1."""

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from alerts.models import Alert, AlertFinding
from questionnaires import library
from questionnaires.models import QuestionnaireResponse
from questionnaires.services import questionnaire_import
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _answer_page(page: Page, choose: dict[str, int]) -> None:
    """Tick the first option of every question on the page ("Slet ikke", "Nej"), or the option
    at the index ``choose`` gives for a question's field name."""
    for name in page.evaluate("() => [...new Set([...document.querySelectorAll('main input[type=radio]')]"
                              ".map(e => e.name))]"):
        page.locator(f"main input[type=radio][name='{name}']").nth(choose.get(name, 0)).check()


@pytest.fixture
def phq9(live_cast: Any) -> Any:
    """PHQ-9 in patient A's programme, which has no colour rule and a score rule nowhere:
    exactly the demo's programme. Added before the browser starts (the ORM in this thread)."""
    questionnaire = questionnaire_import(resource=library.load("phq-9"))
    live_cast.program_a.questionnaires.add(questionnaire)
    live_cast.program_a.department_phone = "78 45 12 34"
    live_cast.program_a.save()
    return questionnaire


def test_phq9_item_9_alone_gives_crisis_advice_with_112_and_a_red_alert_on_the_worklist(
        phq9: Any, new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.goto(f"{live_stack.url}/me/questionnaires/{phq9.pk}/")
    for _ in range(10):
        if page.url.endswith("/review/"):
            break
        # Item 9: "Flere dage" (the second option); everything else the first ("Slet ikke", "Nej").
        _answer_page(page, {"q-phq9-9": 1})
        page.get_by_role("button", name="Næste").click()
        page.wait_for_load_state()
    expect(page).to_have_url(f"{live_stack.url}/me/questionnaires/{phq9.pk}/review/")
    page.get_by_role("button", name="Send svar").click()

    expect(page).to_have_url(f"{live_stack.url}/me/questionnaires/{phq9.pk}/thanks/")
    expect(page.locator("h1")).to_have_text("Ring til afdelingen i dag")
    advice = page.locator("#urgent-advice")
    expect(advice).to_contain_text("ring 112")
    expect(advice.locator("a[href='tel:78451234']")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("hverdage")
    # The most important line is the first thing on a 390×844 screen, without scrolling.
    box = page.locator("h1").bounding_box()
    assert box is not None and box["y"] < 300
    check_page(page, "the receipt with crisis advice (phone)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "receipt-crisis-advice-phone.png"))

    _wait_for(lambda: Alert.objects.filter(patient=live_cast.patient_a, severity="red").exists(),
              "the red alert of the safety net")
    alert = Alert.objects.get(patient=live_cast.patient_a, severity="red")
    assert alert.rule.kind == "safety" and alert.rule.program == live_cast.program_a

    clinician = new_context(DESKTOP).new_page()
    login(clinician, live_stack.url, "clinician-a")
    clinician.goto(live_stack.url + "/triage/")
    row = clinician.locator(f"#alerts li.alert[data-id='{alert.pk}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text("Tanker om, at det ville være bedre")


def test_switching_a_safety_net_off_without_a_reason_shows_a_danish_message_next_to_the_field(
        phq9: Any, new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    from alerts.models import Rule

    rule = Rule.objects.get(program=live_cast.program_a, safety_net_for=phq9.url)
    page = new_context(DESKTOP).new_page()
    login(page, live_stack.url, "admin")
    page.goto(live_stack.url + "/rules/safety/")
    check_page(page, "the safety net page")
    section = page.locator("section", has=page.locator(f"#net-{rule.pk}"))
    section.get_by_role("button", name="Slå fra").click()
    errors = page.locator(f"#id_r{rule.pk}-reason-errors")
    expect(errors).to_have_text("Skriv, hvorfor programmet ikke har brug for sikkerhedsnettet.")
    check_page(page, "the safety net page with an error")
    rule.refresh_from_db()
    assert rule.active and rule.version == 1


def _fill_numbers(page: Page) -> None:
    """Give every empty number field on the page its lowest allowed value (or 0): a calm answer."""
    for field in page.locator("main input[inputmode=numeric], main input[inputmode=decimal], "
                              "main input[type=number]").all():
        if field.is_visible() and not field.input_value():
            field.fill(field.get_attribute("min") or "0")


@pytest.mark.parametrize("name", library.names())
def test_a_contact_request_on_every_library_instrument_reaches_the_worklist_at_least_yellow(
        name: str, new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    """Issue 19: "Vil du gerne kontaktes af os?" = Ja, with every other answer the first (calm) one,
    answered through the patient's own pages on a phone, raises at least a yellow alert — in a
    programme with no rule of its own for the instrument (the instrument's safety net)."""
    questionnaire = questionnaire_import(resource=library.load(name))
    live_cast.program_a.questionnaires.add(questionnaire)
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.goto(f"{live_stack.url}/me/questionnaires/{questionnaire.pk}/")
    for _ in range(30):
        if page.url.endswith("/review/"):
            break
        for field in page.evaluate("() => [...new Set([...document.querySelectorAll('main input[type=radio]')]"
                                   ".map(e => e.name))]"):
            options = page.locator(f"main input[type=radio][name='{field}']")
            ja = page.locator(f"main input[type=radio][name='{field}'][value='true']")
            (ja if field.endswith("contact") and ja.count() else options.first).check()
        _fill_numbers(page)
        page.get_by_role("button", name="Næste").click()
        page.wait_for_load_state()
    expect(page).to_have_url(f"{live_stack.url}/me/questionnaires/{questionnaire.pk}/review/")
    page.get_by_role("button", name="Send svar").click()
    expect(page).to_have_url(f"{live_stack.url}/me/questionnaires/{questionnaire.pk}/thanks/")
    expect(page.locator("h1")).to_have_text(re.compile("Vi ringer til dig|Ring til afdelingen i dag"))

    def raised() -> bool:
        # The safety net's alert, or the programme's own rule's where it has one (the net then
        # stands back: one alert for the nurse, not two); either way from this very response.
        response = (QuestionnaireResponse.objects
                    .filter(patient=live_cast.patient_a, questionnaire__url=questionnaire.url, status="completed")
                    .order_by("-pk").first())
        return response is not None and AlertFinding.objects.filter(
            source_key=f"response:{response.pk}", severity__in=("yellow", "red")).exists()

    _wait_for(raised, f"an alert for the contact request on {name}")
