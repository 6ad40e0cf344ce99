"""A multi-page questionnaire with enableWhen in a real browser at phone size: questions appear
as the patient answers, the slider shows its value, leaving saves the draft, coming back resumes,
the review lists every answer, and axe-core finds nothing on any page of the flow."""

import copy
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from questionnaires.models import QuestionnaireResponse
from questionnaires.services import questionnaire_import
from tests.browser.conftest import PHONE, check_page, login
from tests.questionnaire_samples import MULTI_PAGE

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_patient_answers_a_multi_page_questionnaire_on_a_phone_leaves_resumes_reviews_and_sends(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    questionnaire = questionnaire_import(resource=copy.deepcopy(MULTI_PAGE))
    live_cast.program_a.questionnaires.add(questionnaire)
    base = f"{live_stack.url}/me/questionnaires/{questionnaire.pk}"
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")

    page.locator("main a.button", has_text="Symptomtjek").click()
    expect(page).to_have_url(f"{base}/page/1/")
    expect(page.locator("#progress-text")).to_have_text("Side 1 af 3")
    where = page.locator(".q-item[data-link-id='pain-where']")
    expect(where).to_be_hidden()  # enableWhen, live in the browser
    check_page(page, "page 1 (empty)")

    page.get_by_label("Meget").check()
    expect(where).to_be_visible()
    page.get_by_label("Hvor gør det ondt?").fill("knæ")
    expect(page.locator("#progress-text")).to_have_text("Side 1 af 3")
    page.get_by_label("Lidt").check()
    page.get_by_label("Meget").check()
    page.get_by_role("button", name="Næste").click()

    # The severe-pain page exists only because the pain is severe; its slider shows its value.
    expect(page).to_have_url(f"{base}/page/2/")
    expect(page.locator("#progress-text")).to_have_text("Side 2 af 4")
    slider = page.locator("input[type=range]#id_q-pain-score")
    expect(slider).to_be_visible()
    expect(page.locator(".slider output")).to_have_text("–")
    check_page(page, "page 2 (slider, unset)")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(page.locator(".slider output")).to_have_text("8")
    expect(page.locator("input[name='q-pain-score']")).to_have_value("8")
    check_page(page, "page 2 (slider set)")
    page.get_by_role("button", name="Næste").click()

    # Page 3: answer, then leave without pressing anything; the draft is saved as the page goes.
    expect(page).to_have_url(f"{base}/page/3/")
    page.locator("input[name='q-breathless'][value='false']").check()
    check_page(page, "page 3")
    page.locator("header details.menu > summary").click()  # on a phone the links are in the menu
    page.locator("header nav a", has_text="Min side").click()
    expect(page).to_have_url(live_stack.url + "/me/")
    _wait_for(lambda: "breathless" in str(
        QuestionnaireResponse.objects.get(status="in-progress").items), "the draft saved on leaving")
    continue_button = page.locator("main a.button", has_text="Fortsæt")
    expect(continue_button).to_be_visible()
    check_page(page, "/me/ with a draft")

    continue_button.click()
    expect(page).to_have_url(f"{base}/page/3/")
    expect(page.locator("input[name='q-breathless'][value='false']")).to_be_checked()
    page.get_by_role("button", name="Næste").click()

    # Page 4: the required contact question left out shows the summary and the error by it.
    expect(page).to_have_url(f"{base}/page/4/")
    page.get_by_role("button", name="Næste").click()
    summary = page.locator("#form-errors")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(page.locator("#id_q-contact-errors")).to_be_visible()
    check_page(page, "page 4 (with errors)")
    page.locator("input[name='q-contact'][value='true']").check()
    page.get_by_role("button", name="Næste").click()

    expect(page).to_have_url(f"{base}/review/")
    main = page.locator("main")
    for text in ("Meget", "knæ", "8", "Nej", "Ja"):
        expect(main).to_contain_text(text)
    check_page(page, "the review page")
    # Change one answer from the review page and come back.
    page.locator(f"a[href='/me/questionnaires/{questionnaire.pk}/page/1/?return=review#id_q-pain-where']").click()
    expect(page).to_have_url(re.compile(r"/page/1/\?return=review#id_q-pain-where$"))
    page.get_by_label("Hvor gør det ondt?").fill("ryg")
    page.get_by_role("button", name="Næste").click()
    expect(page).to_have_url(f"{base}/review/")
    expect(main).to_contain_text("ryg")

    page.get_by_role("button", name="Send svar").click()
    expect(page).to_have_url(f"{base}/thanks/")
    # The patient asked to be contacted: the receipt says so first (issue 19).
    expect(page.locator("h1")).to_have_text("Vi ringer til dig")
    expect(page.locator("#contact-advice")).to_contain_text("inden for 1 hverdag")
    check_page(page, "the receipt")

    response = QuestionnaireResponse.objects.get()
    assert response.status == "completed"
    answers = {i["linkId"]: i.get("answer") for group in response.items for i in group.get("item", [group])}
    assert answers["pain-where"] == [{"valueString": "ryg"}]
    assert answers["pain-score"] == [{"valueInteger": 8}]
    assert answers["contact"] == [{"valueBoolean": True}]
