"""The patient's pages in a real browser: the questionnaire and the measurement web form,
validation errors shown next to their field, nothing stored until the answer is valid, axe-core
clean and usable on a phone without sideways scrolling."""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from monitoring.models import Reading
from questionnaires.models import QuestionnaireResponse
from tests.browser.conftest import DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def fieldset_for(page: Page, question: str):
    return page.locator("fieldset.field").filter(has=page.locator("legend", has_text=question))


def submit(page: Page) -> None:
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state("domcontentloaded")


@VIEWPORTS
def test_patient_answers_the_questionnaire(new_context: Callable[..., BrowserContext], live_stack: Any,
                                           live_cast: Any, viewport: dict[str, int]) -> None:
    page = new_context(viewport).new_page()
    page.goto(live_stack.url + "/login/")
    check_page(page, "the login page")

    login(page, live_stack.url, "patient-a")
    expect(page).to_have_url(live_stack.url + "/me/")
    expect(page.locator("h1")).to_contain_text("Alma")
    check_page(page, "/me/")

    page.locator("main a.button", has_text="Daglig tjek ved hjertesvigt").click()
    expect(page).to_have_url(re.compile(rf"/me/questionnaires/{live_cast.questionnaire.pk}/page/1/$"))
    expect(page.locator("h1")).to_have_text("Daglig tjek ved hjertesvigt")
    check_page(page, "the questionnaire (empty)")

    # Everything but the required contact question.
    page.locator("input[name='q-breathless'][value='bit-worse']").check()
    page.locator("input[name='q-swelling'][value='false']").check()
    page.locator("input[name='q-pillows']").fill("2")
    submit(page)

    expect(page).to_have_url(re.compile(rf"/me/questionnaires/{live_cast.questionnaire.pk}/page/1/$"))
    expect(page.locator("#form-errors[role=alert]")).to_be_visible()
    contact = fieldset_for(page, "Vil du gerne kontaktes af os?")
    expect(contact).to_have_class(re.compile(r"\bhas-error\b"))
    error = contact.locator("ul.errors")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    # The error is tied to its question for screen readers, and only that question has one.
    error_id = error.get_attribute("id")
    expect(contact).to_have_attribute("aria-describedby", error_id)
    expect(page.locator("main .field ul.errors")).to_have_count(1)
    # What the patient had answered is kept.
    expect(page.locator("input[name='q-breathless'][value='bit-worse']")).to_be_checked()
    expect(page.locator("input[name='q-swelling'][value='false']")).to_be_checked()
    expect(page.locator("input[name='q-pillows']")).to_have_value("2")
    # A draft keeps what was valid; nothing is submitted.
    assert not QuestionnaireResponse.objects.filter(status="completed").exists(), "an invalid answer was sent"
    check_page(page, "the questionnaire (with errors)")

    yes = page.locator("input[name='q-contact'][value='true']")
    expect(contact.locator("label.option").filter(has=yes)).to_have_text(re.compile(r"^\s*(Ja|Yes)\s*$"))
    yes.check()
    submit(page)

    # The review page lists the answers before they are sent.
    expect(page).to_have_url(re.compile(rf"/me/questionnaires/{live_cast.questionnaire.pk}/review/$"))
    check_page(page, "the review page")
    submit(page)

    expect(page).to_have_url(re.compile(rf"/me/questionnaires/{live_cast.questionnaire.pk}/thanks/$"))
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("main a.button[href='/me/']")).to_be_visible()
    check_page(page, "the receipt")

    responses = list(QuestionnaireResponse.objects.all())
    assert len(responses) == 1
    response = responses[0]
    assert response.patient_id == live_cast.patient_a.pk
    assert response.questionnaire_id == live_cast.questionnaire.pk
    answers = {item["linkId"]: item["answer"] for item in response.items}
    assert answers["contact"] == [{"valueBoolean": True}]
    assert answers["swelling"] == [{"valueBoolean": False}]
    assert answers["pillows"] == [{"valueInteger": 2}]
    assert answers["breathless"][0]["valueCoding"]["code"] == "bit-worse"

    page.goto(live_stack.url + "/me/readings/new/")
    expect(page.locator("#id_value")).to_be_visible()
    check_page(page, "/me/readings/new/")


@VIEWPORTS
def test_patient_sends_a_measurement_by_web_form(new_context: Callable[..., BrowserContext],
                                                 live_stack: Any, live_cast: Any,
                                                 viewport: dict[str, int]) -> None:
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "patient-a")
    page.locator("main a.button[href='/me/readings/new/']").click()
    expect(page).to_have_url(live_stack.url + "/me/readings/new/")

    page.locator("#id_measure").select_option("spo2")
    page.locator("#id_value").fill("150")
    submit(page)

    expect(page).to_have_url(live_stack.url + "/me/readings/new/")
    value_field = page.locator("main .field").filter(has=page.locator("#id_value"))
    expect(value_field).to_have_class(re.compile(r"\bhas-error\b"))
    error = value_field.locator("ul.errors")
    expect(error).to_be_visible()
    expect(error).to_contain_text("100")  # the highest possible SpO2
    expect(page.locator("main .field ul.errors")).to_have_count(1)
    expect(page.locator("#id_measure")).to_have_value("spo2")
    assert not Reading.objects.filter(patient=live_cast.patient_a).exists(), "an impossible value was stored"
    check_page(page, "/me/readings/new/ (with errors)")

    page.locator("#id_value").fill("95")
    submit(page)

    expect(page).to_have_url(live_stack.url + "/me/")
    expect(page.locator("main .messages .message.success")).to_be_visible()
    expect(page.locator("main table")).to_contain_text("95")
    check_page(page, "/me/ (after sending)")
    readings = list(Reading.objects.filter(patient=live_cast.patient_a))
    assert [(r.measure, r.value, r.source) for r in readings] == [("spo2", Decimal(95), "web")]


def test_on_a_phone_a_typed_decimal_comma_is_kept_and_every_tap_target_is_44_px(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.locator("header details.menu > summary").click()  # the header's links are in the menu
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('header summary, header nav a, header nav button, main a.button,"
        " main a.back')]"
        "  .map(e => [e.textContent.trim(), e.getBoundingClientRect().height])")
    assert sizes and all(height >= 44 for _text, height in sizes), sizes

    page.goto(live_stack.url + "/me/readings/new/glucose/")
    back = page.locator("main a.back").bounding_box()
    assert back is not None and back["height"] >= 44
    value = page.locator("#id_value")
    expect(value).to_have_attribute("inputmode", "decimal")
    value.press_sequentially("5,6")  # typed key by key, as on the phone's keyboard
    expect(value).to_have_value("5,6")
    submit(page)
    expect(page).to_have_url(live_stack.url + "/me/readings/glucose/")
    assert [(r.measure, str(r.value)) for r in Reading.objects.filter(patient=live_cast.patient_a)] == [
        ("glucose", "5.600")]


def test_on_a_phone_an_unusual_value_is_asked_about_then_stored_with_what_to_do(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.goto(live_stack.url + "/me/readings/new/spo2/")
    page.locator("#id_value").fill("80")
    submit(page)

    # Asked beside the field, with the value kept: nothing stored yet.
    error = page.locator("main .field").filter(has=page.locator("#id_value")).locator("ul.errors")
    expect(error).to_contain_text("80 %")
    expect(page.locator("#id_value")).to_have_value("80")
    assert not Reading.objects.filter(patient=live_cast.patient_a).exists()
    check_page(page, "/me/readings/new/spo2/ (asked to check an unusual value, phone)")

    submit(page)  # "If it is right, press Send again"
    expect(page).to_have_url(live_stack.url + "/me/readings/spo2/")
    warning = page.locator("main .messages .message.warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("112")
    check_page(page, "/me/readings/spo2/ (after an alarming value, phone)")
    assert [r.value for r in Reading.objects.filter(patient=live_cast.patient_a)] == [80]
