"""Setting up a programme in a real browser (issue 24), as the administrator, in Danish: create
the programme, upload a questionnaire (report + phone preview, then publish), schedule it with a
preview, add a threshold rule and a per-answer rule with a trial on the last 90 days, enrol a
patient — no JSON typed anywhere — and bad input on the way gets a Danish message next to its
field. Then the patient is asked the questionnaire on /me/ and a low SpO2 she sends raises the
programme's red alert. axe-core finds
nothing on any editor page. Screenshots at 1440×900 land in test-artifacts/."""

import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from alerts.models import Alert, Rule
from patients.models import Program
from questionnaires.library import load
from questionnaires.models import Questionnaire
from schedules.models import Occurrence, Schedule
from schedules.services import occurrences_advance
from tests.browser.conftest import ARTIFACTS, assert_accessible, login

pytestmark = [pytest.mark.browser, pytest.mark.live]

WIDE = {"width": 1440, "height": 900}


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"editor-{name}.png"), full_page=True)


def _error_next_to(page: Page, field_id: str, words: str) -> None:
    expect(page.locator(f"#{field_id}-errors")).to_contain_text(words)


def test_an_administrator_sets_up_a_programme_from_nothing_without_json(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any, tmp_path: Any) -> None:
    page = new_context(WIDE).new_page()
    login(page, live_stack.url, "admin")

    # The programme: a taken short name first, then right.
    page.goto(live_stack.url + "/programmes/new/")
    assert_accessible(page, "the new-programme page")
    page.locator("#id_name").fill("Hjemmemonitorering ved KOL")
    page.locator("#id_slug").fill("lung")
    page.locator("#id_condition_code").fill("DJ44")
    page.locator("#id_condition_display").fill("KOL")
    page.locator("input[name=measures][value=spo2]").check()
    page.get_by_role("button", name="Opret programmet").click()
    _error_next_to(page, "id_slug", "Et andet program har allerede dette korte navn.")
    assert_accessible(page, "the new-programme page with an error")
    page.locator("#id_slug").fill("kol-hjemme")
    page.get_by_role("button", name="Opret programmet").click()
    expect(page.locator("h1")).to_have_text("Hjemmemonitorering ved KOL")
    program = Program.objects.get(slug="kol-hjemme")
    assert_accessible(page, "the programme page")
    _shot(page, "programme")

    # A questionnaire: a file that is not FHIR, then the real one.
    page.goto(live_stack.url + f"/programmes/{program.pk}/questionnaires/upload/")
    bad = tmp_path / "svar.csv"
    bad.write_text("spoergsmaal;svar\n1;2\n", encoding="utf-8")
    page.locator("#id_file").set_input_files(str(bad))
    page.get_by_role("button", name="Kontrollér og vis").click()
    _error_next_to(page, "id_file", "ikke JSON")
    assert_accessible(page, "the upload page with an error")
    good = tmp_path / "lung-followup.json"
    good.write_text(json.dumps(load("lung-followup")), encoding="utf-8")
    page.locator("#id_file").set_input_files(str(good))
    page.get_by_role("button", name="Kontrollér og vis").click()
    expect(page.locator(".phone-preview")).to_be_visible()
    assert_accessible(page, "the import report and phone preview")
    _shot(page, "questionnaire-preview")
    page.get_by_role("button", name="Udgiv i programmet").click()
    expect(page.locator("h1")).to_have_text("Hjemmemonitorering ved KOL")

    # Its contact question in the team's own words: a new version in the programme.
    uploaded = Questionnaire.objects.get(url=load("lung-followup")["url"])
    page.goto(live_stack.url + f"/programmes/{program.pk}/questionnaires/{uploaded.pk}/edit/")
    contact = page.locator("#contact-question")
    expect(contact.locator("#id_contact_text")).to_have_value("Vil du gerne kontaktes af os?")
    contact.locator("#id_contact_text").fill("")
    page.get_by_role("button", name="Gem som ny version").click()
    _error_next_to(page, "id_contact_text", "Kontaktspørgsmålet skal have sin tekst.")
    page.locator("#id_contact_text").fill("Skal vi ringe til dig?")
    page.locator("#id_contact_en").fill("Shall we call you?")
    page.locator("#id_reason").fill("KOL-teamets formulering")
    assert_accessible(page, "the questionnaire wording form")
    _shot(page, "questionnaire-contact")
    page.get_by_role("button", name="Gem som ny version").click()
    expect(page.locator("h1")).to_have_text("Hjemmemonitorering ved KOL")
    revised = Questionnaire.objects.filter(url=uploaded.url).order_by("-created_at").first()
    assert revised is not None
    assert revised.version == "2" and revised.definition.by_link_id()["contact"].text == "Skal vi ringe til dig?"

    # A schedule: a window of 0 and a day before the start, then weekly with a preview.
    page.goto(live_stack.url + f"/programmes/{program.pk}/schedules/new/")
    assert_accessible(page, "the new-schedule page")
    page.locator("#id_name").fill("Ugentligt")
    page.locator("#id_questionnaire_url").select_option(index=1)
    page.locator("input[name=kind][value=every]").check()
    page.locator("#id_every_days").fill("7")
    page.locator("#id_from_day").fill("-7")
    page.locator("#id_to_day").fill("84")
    page.locator("#id_window_days").fill("0")
    page.get_by_role("button", name="Gem planen").click()
    _error_next_to(page, "id_window_days", "mere end 0 dage")
    page.locator("#id_window_days").fill("2")
    page.get_by_role("button", name="Gem planen").click()
    _error_next_to(page, "id_from_day", "før behandlingsstart")
    assert_accessible(page, "the new-schedule page with errors")
    page.locator("#id_from_day").fill("7")
    page.get_by_role("button", name="Vis de første ti").click()
    expect(page.locator("#preview tbody tr")).to_have_count(10)
    _shot(page, "schedule-preview")
    page.get_by_role("button", name="Gem planen").click()
    expect(page.locator("#schedules")).to_contain_text("Ugentligt")
    assert Schedule.objects.filter(program=program).count() == 1

    # A threshold rule: inverted limits, then a trial, then saved with a reason.
    page.goto(live_stack.url + f"/programmes/{program.pk}/rules/new/threshold/")
    assert_accessible(page, "the threshold rule form")
    page.locator("#id_name").fill("SpO2 under 92 %")
    page.locator("#id_severity").select_option("red")
    page.locator("#id_p_measure").select_option("spo2")
    page.locator("#id_p_low").fill("95")
    page.locator("#id_p_high").fill("90")
    page.locator("#id_reason").fill("Aftalt på KOL-teammødet")
    page.get_by_role("button", name="Gem reglen").click()
    _error_next_to(page, "id_p_high", "Den nedre grænse skal være under den øvre grænse.")
    assert_accessible(page, "the threshold rule form with an error")
    page.locator("#id_p_low").fill("92")
    page.locator("#id_p_high").fill("")
    page.get_by_role("button", name="Prøv på de sidste 90 dage").click()
    expect(page.locator("#trial")).to_contain_text("Denne regel ville have givet")
    assert_accessible(page, "the threshold rule form with a trial")
    _shot(page, "rule-trial")
    page.get_by_role("button", name="Gem reglen").click()
    expect(page.locator("#rules")).to_contain_text("SpO2 under 92 %")
    threshold = Rule.objects.get(program=program, kind="threshold")

    # A change is tried before it is saved, saved with why, listed in the history and rolled back.
    page.goto(live_stack.url + f"/programmes/{program.pk}/rules/{threshold.pk}/")
    page.locator("#id_p_low").fill("90")
    page.locator("#id_reason").fill("")
    page.get_by_role("button", name="Gem reglen").click()
    _error_next_to(page, "id_reason", "")
    page.get_by_role("button", name="Prøv på de sidste 90 dage").click()
    expect(page.locator("#trial")).to_contain_text("Som den er nu")
    assert float(Rule.objects.get(pk=threshold.pk).params["low"]) == 92  # a trial saves nothing
    page.locator("#id_reason").fill("Prøver en lavere grænse")
    page.get_by_role("button", name="Gem reglen").click()
    card = page.locator(f"#rule-{threshold.pk}").locator("xpath=..")
    card.locator("summary").click()
    history = card.locator("table tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("Prøver en lavere grænse")
    expect(history.nth(1)).to_contain_text("Aftalt på KOL-teammødet")
    assert_accessible(page, "the programme page with a rule's history open")
    _shot(page, "rule-history")
    card.get_by_role("link", name="Gå tilbage til version 1").click()
    page.locator("#id_reason").fill("90 gav for mange alarmer")
    page.get_by_role("button", name="Gå tilbage til version 1").click()
    expect(page.locator("#rules")).to_contain_text("SpO2 under 92 %")
    threshold.refresh_from_db()
    assert (threshold.version, float(threshold.params["low"])) == (3, 92)

    # A per-answer rule on the uploaded questionnaire's contact question.
    page.goto(live_stack.url + f"/programmes/{program.pk}/rules/new/answer/")
    page.locator("#id_name").fill("Vil kontaktes")
    question = page.locator("#id_p_link_id")
    values = [o.get_attribute("value", timeout=1000) for o in question.locator("option").all()]
    contact_value = next(v for v in values if v and v.endswith("|contact"))
    question.select_option(contact_value)
    page.locator("input[name=p_codes][value='contact|true']").check()
    page.locator("#id_reason").fill("Kontaktønsker skal ses samme dag")
    page.get_by_role("button", name="Prøv på de sidste 90 dage").click()
    expect(page.locator("#trial")).to_be_visible()
    page.get_by_role("button", name="Gem reglen").click()
    expect(page.locator("#rules")).to_contain_text("Vil kontaktes")
    assert_accessible(page, "the programme page with its rules")
    _shot(page, "programme-rules")
    assert set(Rule.objects.filter(program=program, safety_net_for="").values_list("kind", flat=True)) == {
        "threshold", "answer"}

    # Publish, then enrol patient A from a week ago: the weekly schedule's day 7 is today.
    page.get_by_role("button", name="Udgiv programmet").click()
    expect(page.locator("#patients")).to_contain_text("Udgivet")
    page.goto(live_stack.url + f"/programmes/{program.pk}/enrol/")
    assert_accessible(page, "the enrolment page")
    page.locator("#id_q").fill(live_cast.patient_a.cpr)  # sent by POST: never in the URL
    page.get_by_role("button", name="Søg", exact=True).click()
    page.get_by_role("radio", name=re.compile(live_cast.patient_a.name)).check()
    assert live_cast.patient_a.cpr not in page.url
    assert_accessible(page, "the enrolment page with the search's hits")
    _shot(page, "enrol-search")
    page.locator("#id_care_team").select_option(str(live_cast.team_a.pk))
    page.locator("#id_treatment_start").fill((timezone.localdate() - timedelta(days=7)).isoformat())
    page.get_by_role("button", name="Tilmeld", exact=True).click()
    expect(page.locator("#patients")).to_contain_text("1 patient er tilmeldt")
    assert Occurrence.objects.filter(patient=live_cast.patient_a, schedule__program=program).exists()
    occurrences_advance(now=timezone.now())  # the beat's job: today's occurrence opens

    # The patient is asked the questionnaire, and a low SpO2 raises the programme's red alert.
    patient = new_context(WIDE).new_page()
    login(patient, live_stack.url, "patient-a")
    patient.goto(live_stack.url + "/me/")
    expect(patient.locator("main")).to_contain_text(load("lung-followup")["title"])
    patient.goto(live_stack.url + "/me/readings/new/spo2/")
    patient.locator("#id_value").fill("89")
    patient.get_by_role("button", name="Send").click()
    expect(patient.locator("main")).to_contain_text("Din måling er sendt")
    # In the production shape a real worker evaluates the reading after the answer: wait for it.
    deadline = time.monotonic() + 30
    while not Alert.objects.filter(patient=live_cast.patient_a, rule__program=program, rule__kind="threshold",
                                   severity="red").exists():
        assert time.monotonic() < deadline, "no red threshold alert from the new programme's rule"
        time.sleep(0.3)
