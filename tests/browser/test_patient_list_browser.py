"""Finding the patient who phones, in a real browser: the nurse searches the patient list by CPR
number and by name, opens the patient, and the CPR number is in no URL the browser visited or
requested (its history) — with errors in Danish next to the field, axe-core clean, at 1440×900
and on a phone."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import ARTIFACTS, PHONE, check_page, login
from tests.factories import make_patient

pytestmark = [pytest.mark.browser, pytest.mark.live]

WIDE = {"width": 1440, "height": 900}


@pytest.fixture
def many_patients(live_cast: Any) -> list[Any]:
    return [make_patient(f"patient-{i}", f"{10 + i}0770-{2000 + i}", live_cast.team_a, live_cast.program_a,
                         given_name=f"Person{i:02d}") for i in range(20)]


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1440x900", "phone"])
def test_a_nurse_finds_the_patient_by_cpr_number_and_the_number_is_in_no_url(
        many_patients: list[Any], new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any,
        viewport: dict[str, int]) -> None:
    context = new_context(viewport)
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("framenavigated", lambda f: urls.append(f.url))
    login(page, live_stack.url, "clinician-a")
    menu = page.locator("header details.menu > summary")
    if menu.is_visible():  # on a phone the header's links are in the menu
        menu.click()
    page.locator("nav a", has_text="Patienter").click()
    expect(page.locator("h1")).to_have_text("Patienter")
    expect(page.locator("tr[data-patient]")).to_have_count(21)
    check_page(page, "/patients/")
    if viewport == WIDE:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "patients-1440x900.png"))

    # Without the dash; then with it.
    for typed in ("0101501111", "010150-1111"):
        page.locator("#id_q").fill(typed)
        page.locator("form.search button[type=submit]").click()
        expect(page.locator("tr[data-patient]")).to_have_count(1)
        expect(page.locator(f"tr[data-patient='{live_cast.patient_a.pk}'] td.cpr")).to_have_text("010150-1111")
    check_page(page, "/patients/ with a search result")
    if viewport == WIDE:
        page.screenshot(path=str(ARTIFACTS / "patients-search-1440x900.png"))
    # Reload and back keep working (post, redirect, get): no "resend the form?" question.
    page.reload()
    expect(page.locator("tr[data-patient]")).to_have_count(1)

    page.locator(f"tr[data-patient='{live_cast.patient_a.pk}'] a").first.click()
    expect(page).to_have_url(re.compile(rf"/patients/{live_cast.patient_a.pk}/$"))
    header = page.locator(".patient-header")
    for text in ("010150-1111", "år", "Lung follow-up", "Team A"):
        expect(header).to_contain_text(text)
    if viewport == WIDE:
        page.screenshot(path=str(ARTIFACTS / "patient-header-1440x900.png"))
    page.go_back()
    expect(page.locator("tr[data-patient]")).to_have_count(1)

    # By name: every word, any order, any case.
    page.locator("#id_q").fill("person07 TESTSEN")
    page.locator("form.search button[type=submit]").click()
    expect(page.locator("tr[data-patient]")).to_have_count(1)
    expect(page.locator("tr[data-patient] td.cpr")).to_have_text(many_patients[7].cpr)

    history = page.evaluate("() => history.length")
    assert history >= 4
    assert urls, "no URL was recorded"
    for url in urls + [page.url]:
        for cpr in ("0101501111", "010150-1111", "010150", many_patients[7].cpr, many_patients[7].cpr[:6]):
            assert cpr not in url, url


def test_bad_search_input_is_answered_in_danish_next_to_the_field(
        live_cast: Any, new_context: Callable[..., BrowserContext], live_stack: Any) -> None:
    page = new_context(WIDE).new_page()
    login(page, live_stack.url, "clinician-a")
    page.goto(live_stack.url + "/patients/")
    field = page.locator("#id_q")
    errors = page.locator("#id_q-errors")

    page.locator("form.search button[type=submit]").click()
    expect(errors).to_contain_text("Skriv et navn eller et CPR-nummer")
    expect(page.locator(".error-summary")).to_be_visible()
    expect(field).to_have_attribute("aria-describedby", re.compile(r"id_q-errors"))
    check_page(page, "/patients/ with an empty search")

    # The field stops typing at 100 characters (maxlength); a browser that ignores it, or a
    # crafted request, still gets the message from the server.
    expect(field).to_have_attribute("maxlength", "100")
    field.evaluate("el => el.removeAttribute('maxlength')")
    field.fill("1" * 500)
    page.locator("form.search button[type=submit]").click()
    expect(errors).to_contain_text("højst være 100 tegn")

    # A NUL byte cannot be typed; sent as a form would send it.
    response = page.request.post(live_stack.url + "/patients/", form={
        "q": "Alma\x00", "csrfmiddlewaretoken": page.locator("input[name=csrfmiddlewaretoken]").first.input_value()},
        headers={"Referer": live_stack.url + "/patients/"})
    assert response.status == 400
    assert "Null-tegn er ikke tilladt" in response.text()
