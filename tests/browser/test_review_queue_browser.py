"""The review queue in a real browser (Debian chromium + axe-core, issue 19): a green response
waits on "Svar til gennemsyn" until a nurse marks it as reviewed, and only then does the patient
see "Set af dit behandlerteam" — a nurse merely opening the patient page changes nothing. A red
response is reviewed one at a time beside the answers on the patient page."""

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from questionnaires.models import ResponseReview
from questionnaires.services import response_submit
from tests.browser.conftest import PHONE, check_page, login
from tests.factories import response_items

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def answers(live_cast: Any) -> tuple[Any, Any]:
    """A green and a red response of patient A, committed before the browser starts."""
    cast = live_cast

    def submit(**given: Any) -> Any:
        return response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire,
                               items=response_items(cast.questionnaire, {"contact": False, **given}),
                               author=cast.patient_a.user)

    return submit(), submit(breathless="much-worse")


def test_a_green_response_waits_on_the_review_list_until_marked_and_only_then_the_patient_sees_it_seen(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any, answers: tuple[Any, Any]) -> None:
    green, red = answers
    nurse = new_context().new_page()
    patient = new_context().new_page()
    login(nurse, live_stack.url, "clinician-a")
    login(patient, live_stack.url, "patient-a")

    # The list, from the navigation: red first (one at a time), then green with a checkbox.
    nurse.goto(live_stack.url + "/triage/")
    nurse.locator("header nav a", has_text="Svar til gennemsyn").click()
    expect(nurse.locator("h1")).to_have_text("Svar til gennemsyn")
    rows = nurse.locator("table.review-queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_id(f"review-{red.pk}")
    expect(rows.nth(0)).to_contain_text("Ét ad gangen")
    expect(rows.nth(1)).to_have_id(f"review-{green.pk}")
    check_page(nurse, "the review list")

    # Opening the patient page is reading, not reviewing.
    rows.nth(1).locator("a", has_text="Alma").click()
    expect(nurse.locator(f"#response-{green.pk}")).to_be_visible()
    check_page(nurse, "the patient page with answers to review")
    patient.goto(live_stack.url + "/me/answers/")
    expect(patient.locator("td.seen").first).to_have_text("Ikke set endnu")
    expect(patient.locator("main")).not_to_contain_text("Set af dit behandlerteam")

    # The red one: "Markér som gennemset" beside it on the patient page.
    red_block = nurse.locator(f"#response-{red.pk}")
    red_block.locator("textarea").fill("Ringet op; har det bedre.")
    red_block.locator("button", has_text="Markér som gennemset").click()
    expect(nurse.locator(f"#response-{red.pk}")).to_contain_text("Gennemset af")
    check_page(nurse, "the patient page after a review")

    # The green one in bulk from the list.
    nurse.goto(live_stack.url + "/reviews/")
    expect(rows).to_have_count(1)
    nurse.locator(f"#pick-{green.pk}").check()
    nurse.locator("main button", has_text="Markér de afkrydsede grønne svar som gennemset").click()
    expect(nurse.locator("main")).to_contain_text("Ingen svar venter på gennemsyn.")
    check_page(nurse, "the empty review list")
    assert ResponseReview.objects.filter(response=green, bulk=True).exists()

    patient.reload()
    expect(patient.locator("td.seen").first).to_contain_text("Set af dit behandlerteam")
    expect(patient.locator("td.seen").nth(1)).to_contain_text("Set af dit behandlerteam")


def test_the_review_list_and_a_second_review_from_another_tab_work_on_a_phone(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any, answers: tuple[Any, Any]) -> None:
    green, red = answers
    nurse = new_context(PHONE).new_page()
    login(nurse, live_stack.url, "clinician-a")
    nurse.goto(live_stack.url + "/reviews/")
    expect(nurse.locator("table.review-queue tbody tr")).to_have_count(2)
    check_page(nurse, "the review list on a phone")
    # Two tabs on the patient page; the second "Markér som gennemset" is told, nothing doubles.
    # (A note over 2000 characters cannot be typed: the textarea's maxlength stops it; the
    # server's refusal is tested in tests/test_review_queue.py.)
    url = live_stack.url + f"/patients/{live_cast.patient_a.pk}/#response-{red.pk}"
    first, second = nurse, nurse.context.new_page()
    first.goto(url)
    second.goto(url)
    first.locator(f"#response-{red.pk} button", has_text="Markér som gennemset").click()
    expect(first.locator(f"#response-{red.pk}")).to_contain_text("Gennemset af")
    second.locator(f"#response-{red.pk} button", has_text="Markér som gennemset").click()
    expect(second.locator(".messages")).to_contain_text("har allerede markeret disse svar som gennemset")
    check_page(second, "the patient page after a second review, on a phone")
    assert ResponseReview.objects.filter(response=red).count() == 1
