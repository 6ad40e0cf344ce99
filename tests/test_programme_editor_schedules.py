"""Schedules in the programme editor (issue 24): the questionnaire is picked from the programme,
days count from treatment start, a preview lists the first ten, bad input is refused in Danish."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from questionnaires.library import load
from questionnaires.services import questionnaire_import
from schedules.models import Schedule
from schedules.services import schedule_create

pytestmark = pytest.mark.django_db


def _post(**extra):
    data = {"name": "Ugentlig", "questionnaire_url": "", "kind": "every", "every_days": "7", "from_day": "7",
            "to_day": "84", "due_time": "09:00", "open_before_days": "1", "window_days": "2",
            "example_start": "2026-01-05", "action": "save"}
    data.update(extra)
    return data


def test_the_preview_lists_the_first_ten_occurrences_for_the_example_start_and_saves_nothing(client, cast):
    client.force_login(cast.admin)
    page = client.post(reverse("editor-schedule-new", args=[cast.program_a.pk]),
                       _post(questionnaire_url=cast.questionnaire.url, action="preview"), HTTP_ACCEPT_LANGUAGE="da")
    rows = page.context["preview"]["rows"]
    assert len(rows) == 10
    assert rows[0][1].date() == date(2026, 1, 12) and rows[0][1].hour == 9
    assert rows[0][0].date() == date(2026, 1, 11) and rows[0][2].date() == date(2026, 1, 14)
    assert not Schedule.objects.exists()


def test_a_schedule_saved_from_the_form_is_stored_as_its_typed_spec(client, cast):
    client.force_login(cast.admin)
    page = client.post(reverse("editor-schedule-new", args=[cast.program_a.pk]),
                       _post(questionnaire_url=cast.questionnaire.url))
    assert page.status_code == 302
    schedule = Schedule.objects.get()
    assert (schedule.kind, schedule.params) == ("every", {"every_days": 7, "from_day": 7, "to_day": 84})
    assert schedule.window == timedelta(days=2) and schedule.open_before == timedelta(days=1)


@pytest.mark.parametrize(("extra", "field", "words"), [
    ({"window_days": "0"}, "window_days", "mere end 0 dage"),
    ({"from_day": "-7"}, "from_day", "før behandlingsstart"),
    ({"kind": "once", "day": "-3"}, "day", "før behandlingsstart"),
    ({"kind": "offsets", "days": "7, x"}, "days", "hele dagnumre"),
    ({"to_day": "1"}, "to_day", "Tjek dagene"),
    ({"questionnaire_url": "https://nowhere.example/Q"}, "questionnaire_url", "programmets spørgeskemaer"),
    ({"every_days": ""}, "every_days", "Skal udfyldes"),
])
def test_bad_schedule_input_gets_a_danish_message_next_to_its_field_and_nothing_is_saved(
        client, cast, extra, field, words):
    client.force_login(cast.admin)
    data = _post(questionnaire_url=cast.questionnaire.url)
    data.update(extra)
    page = client.post(reverse("editor-schedule-new", args=[cast.program_a.pk]), data, HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert f'id="id_{field}-errors"' in body, body[body.find("errors"):][:400]
    assert words in body
    assert not Schedule.objects.exists()


def test_a_baseline_before_treatment_start_is_accepted_when_ticked(client, cast):
    client.force_login(cast.admin)
    page = client.post(reverse("editor-schedule-new", args=[cast.program_a.pk]),
                       _post(questionnaire_url=cast.questionnaire.url, kind="once", day="-7", before_start="on"))
    assert page.status_code == 302


def test_a_questionnaire_outside_the_programme_is_refused_by_the_service_and_the_admin_path(cast):
    other = questionnaire_import(resource=load("lung-followup"))
    with pytest.raises(ValidationError) as exc:
        schedule_create(program=cast.program_a, name="x", questionnaire_url=other.url, kind="once",
                        params={"day": 1}, window=timedelta(days=1))
    assert list(exc.value.message_dict) == ["questionnaire_url"]
    schedule = Schedule(program=cast.program_a, name="x", questionnaire_url=other.url, kind="once",
                        params={"day": 1}, window=timedelta(days=1))
    with pytest.raises(ValidationError) as exc:
        schedule.full_clean()
    assert "questionnaire_url" in exc.value.message_dict
