"""The patient's home page tells what is asked for now from what they may answer any time, and
when they are asked next (issue 19, item 7); an empty questionnaire page's error summary is one
line with the count of missing answers and one link."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from questionnaires.library import load
from questionnaires.services import questionnaire_import
from schedules.models import Occurrence, OccurrenceStatus
from schedules.services import schedule_create

pytestmark = pytest.mark.django_db


def _occurrence(cast, questionnaire, *, opens_in: timedelta, status=OccurrenceStatus.SCHEDULED):
    schedule = schedule_create(program=cast.program_a, name=f"s{Occurrence.objects.count()}",
                               questionnaire_url=questionnaire.url, kind="offsets", params={"days": [0]},
                               window=timedelta(days=2), open_before=timedelta(days=1))
    opens = timezone.now() + opens_in
    return Occurrence.objects.create(patient=cast.patient_a, episode=cast.patient_a.episodes.get(),
                                     schedule=schedule, questionnaire_url=questionnaire.url,
                                     questionnaire=questionnaire, opens_at=opens, due_at=opens + timedelta(days=1),
                                     closes_at=opens + timedelta(days=3), status=status)


def _sections(html: str) -> tuple[str, str]:
    due = re.search(r'<section aria-labelledby="q-heading".*?</section>', html, re.S)
    optional = re.search(r'<section aria-labelledby="q-optional-heading".*?</section>', html, re.S)
    return (due.group(0) if due else "", optional.group(0) if optional else "")


def test_the_home_page_puts_a_due_questionnaire_apart_from_optional_ones_and_says_when_next(cast, client):
    phq9 = questionnaire_import(resource=load("phq-9"))
    cast.program_a.questionnaires.add(phq9)
    _occurrence(cast, cast.questionnaire, opens_in=-timedelta(hours=2))  # open now
    following = _occurrence(cast, phq9, opens_in=timedelta(days=9))  # not open yet
    client.force_login(cast.patient_a.user)

    html = client.get("/me/").content.decode()

    due, optional = _sections(html)
    daily, depression = f"/me/questionnaires/{cast.questionnaire.pk}/", f"/me/questionnaires/{phq9.pk}/"
    assert daily in due and depression not in due
    assert depression in optional and daily not in optional
    assert 'class="button primary"' in due and 'class="button primary"' not in optional
    next_day = timezone.localtime(following.due_at).day
    assert re.search(rf"Næste gang, du bliver spurgt: \w+ {next_day}\.", due)  # the next date of all
    assert re.search(rf"Næste gang, du bliver spurgt: \w+ {next_day}\.", optional)  # and beside PHQ-9


def test_with_nothing_open_the_home_page_says_nothing_is_due_and_lists_every_questionnaire_as_optional(
        cast, client):
    client.force_login(cast.patient_a.user)
    due, optional = _sections(client.get("/me/").content.decode())
    assert "Du skal ikke besvare noget lige nu." in due
    assert f"/me/questionnaires/{cast.questionnaire.pk}/" in optional


def test_an_empty_phq9_page_sums_up_the_missing_answers_in_one_line_linking_to_the_first(cast, client):
    phq9 = questionnaire_import(resource=load("phq-9"))
    cast.program_a.questionnaires.add(phq9)
    client.force_login(cast.patient_a.user)

    html = client.post(f"/me/questionnaires/{phq9.pk}/page/1/", {"action": "next"}).content.decode()

    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert summary, "no error summary"
    items = re.findall(r"<li[ >].*?</li>", summary.group(0), re.S)
    assert len(items) == 1
    assert 'href="#id_q-phq9-1"' in items[0] and "9 svar mangler" in items[0]
    # Each question still says what is missing next to it.
    assert html.count('class="errors"') >= 9


def test_a_wrong_answer_beside_missing_ones_is_listed_on_its_own(cast, client):
    client.force_login(cast.patient_a.user)
    html = client.post(f"/me/questionnaires/{cast.questionnaire.pk}/page/1/",
                       {"action": "next", "q-pillows": "mange"}).content.decode()
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert 'href="#id_q-pillows"' in summary
    assert re.search(r"\d+ svar mangler", summary)
