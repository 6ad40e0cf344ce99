"""The clinician's patient list (/patients/): search by CPR number (with or without the dash) and
by name, filters, columns, access by care team, audit, bad input, and the CPR number kept out of
every URL and log line. The header at the top of every patient page."""

import logging
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import Alert, Severity
from audit.models import Action, AuditEvent
from clinic.patient_list import PAGE_SIZE
from monitoring.models import Reading, Source
from patients.models import Patient, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from schedules.models import Pause
from tests.factories import make_patient

pytestmark = pytest.mark.django_db

CPR_A = "010150-1111"  # patient A of the cast (tests/factories.py)


def _english(client: Any) -> None:
    client.cookies["django_language"] = "en"


def _search(client: Any, q: str, **filters: Any) -> Any:
    """POST a search and follow the redirect to the results, as the browser does."""
    return client.post("/patients/", {"q": q, **filters}, follow=True)


def _listed(response: Any) -> set[str]:
    return set(re.findall(r'<tr data-patient="([0-9a-f-]{36})"', response.content.decode()))


def test_search_by_cpr_number_with_the_dash_finds_the_patient(cast, client):
    client.force_login(cast.clinician_a)
    response = _search(client, CPR_A)
    assert response.status_code == 200
    assert _listed(response) == {str(cast.patient_a.pk)}


def test_search_by_cpr_number_without_the_dash_finds_the_patient(cast, client):
    client.force_login(cast.clinician_a)
    assert _listed(_search(client, "0101501111")) == {str(cast.patient_a.pk)}
    assert _listed(_search(client, "  010150 ".strip())) == {str(cast.patient_a.pk)}  # the birth date alone


def test_a_cpr_number_stored_without_the_dash_is_found_with_it(cast, client):
    p = make_patient("patient-c", "0303501234", cast.team_a, cast.program_a, given_name="Cecilie")
    client.force_login(cast.clinician_a)
    assert _listed(_search(client, "030350-1234")) == {str(p.pk)}


def test_search_by_name_finds_every_word_in_either_name_in_any_order(cast, client):
    other = make_patient("patient-c", "030350-3333", cast.team_a, cast.program_a, given_name="Carl")
    Patient.objects.filter(pk=other.pk).update(family_name="Hansen")
    client.force_login(cast.clinician_a)
    assert _listed(_search(client, "alma")) == {str(cast.patient_a.pk)}
    assert _listed(_search(client, "hansen CARL")) == {str(other.pk)}
    assert _listed(_search(client, "testsen")) == {str(cast.patient_a.pk)}
    assert _listed(_search(client, "alma hansen")) == set()


def test_a_clinician_of_team_b_never_sees_team_a_patients_in_the_list_search_or_filters(cast, client):
    client.force_login(cast.clinician_b)
    _english(client)
    everything = client.get("/patients/")
    assert _listed(everything) == {str(cast.patient_b.pk)}
    page = everything.content.decode()
    assert cast.patient_a.name not in page and CPR_A not in page and "Lung follow-up" not in page
    for q in (CPR_A, "0101501111", "Alma", "testsen"):
        found = _search(client, q)
        assert str(cast.patient_a.pk) not in found.content.decode()
        assert CPR_A not in found.content.decode().replace(f'value="{CPR_A}"', "")
    # Team A's programme as a filter is dropped, never a way into team A's list.
    assert _listed(client.get(f"/patients/?program={cast.program_a.pk}")) == {str(cast.patient_b.pk)}
    _red_alert(cast.patient_a)
    assert _listed(client.get("/patients/?open_alerts=on")) == set()


def test_the_administrator_sees_every_team_and_a_patient_role_is_refused(cast, client):
    client.force_login(cast.admin)
    assert _listed(client.get("/patients/")) == {str(cast.patient_a.pk), str(cast.patient_b.pk)}
    client.force_login(cast.patient_a.user)
    assert client.get("/patients/").status_code == 403
    assert client.post("/patients/", {"q": CPR_A}).status_code == 403
    client.force_login(cast.quality)
    assert client.get("/patients/").status_code == 403


def test_each_search_is_audited_with_its_hit_count_and_never_the_cpr_number(cast, client):
    client.force_login(cast.clinician_a)
    _search(client, "0101501111")
    _search(client, "Alma")
    _search(client, "nobody")
    searches = list(AuditEvent.objects.filter(action=Action.SEARCH, resource__startswith="Patient?search")
                    .order_by("pk").values_list("resource", flat=True))
    assert searches == ["Patient?search by CPR number (page): 1 hits", "Patient?search by name (page): 1 hits",
                        "Patient?search by name (page): 0 hits"]
    every = " ".join(AuditEvent.objects.values_list("resource", flat=True))
    assert "0101501111" not in every and "010150" not in every and "Alma" not in every


def test_every_patient_shown_on_a_list_page_is_audited_as_read(cast, client):
    make_patient("patient-c", "030350-3333", cast.team_a, cast.program_a, given_name="Carl")
    client.force_login(cast.clinician_a)
    client.get("/patients/")
    shown = set(AuditEvent.objects.filter(action=Action.READ, resource="Patient list (page)")
                .values_list("patient_ref", flat=True))
    assert shown == set(Patient.objects.exclude(pk=cast.patient_b.pk).values_list("pk", flat=True))
    _search(client, "Alma")
    assert list(AuditEvent.objects.filter(resource="Patient list (search results)")
                .values_list("patient_ref", flat=True)) == [cast.patient_a.pk]


def test_the_cpr_number_is_never_in_a_url_nor_a_log_line(cast, client, caplog):
    client.force_login(cast.clinician_a)
    with caplog.at_level(logging.DEBUG):
        response = client.post("/patients/", {"q": "0101501111"})
        assert response.status_code == 302
        location = response["Location"]
        assert re.fullmatch(r"/patients/\?s=[A-Za-z0-9_-]{16}", location)
        result = client.get(location)
    assert _listed(result) == {str(cast.patient_a.pk)}
    assert "0101501111" not in location and "010150" not in location
    page = result.content.decode()
    for href in re.findall(r'(?:href|action)="([^"]*)"', page):
        assert "010150" not in href
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "0101501111" not in logged and "010150" not in logged


def test_a_search_key_of_another_session_or_an_expired_one_finds_nothing_and_says_so(cast, client):
    client.force_login(cast.clinician_a)
    location = client.post("/patients/", {"q": CPR_A})["Location"]
    client.force_login(cast.clinician_b)  # a new session: the key means nothing there
    response = client.get(location)
    assert response.status_code == 200 and CPR_A not in response.content.decode()
    assert 'class="message info"' in response.content.decode()


@pytest.mark.parametrize(("q", "message"), [
    ("", "Skriv et navn eller et CPR-nummer"),
    ("   ", "Skriv et navn eller et CPR-nummer"),
    ("x" * 5000, "højst være 100 tegn"),
    ("Alma\x00", "Null-tegn er ikke tilladt"),
])
def test_bad_search_input_gets_a_danish_message_next_to_the_field_and_no_500(cast, client, q, message):
    client.force_login(cast.clinician_a)
    client.cookies["django_language"] = "da"
    response = client.post("/patients/", {"q": q})
    assert response.status_code == 400
    page = response.content.decode()
    errors = page[page.index('id="id_q-errors"'):]
    assert message in errors[:errors.index("</ul>")]
    assert 'aria-describedby="id_q-help id_q-errors"' in page
    assert not AuditEvent.objects.filter(action=Action.SEARCH, resource__startswith="Patient?search").exists()


def test_the_search_form_is_sent_by_post_and_not_remembered_by_the_browser(cast, client):
    client.force_login(cast.clinician_a)
    page = client.get("/patients/").content.decode()
    form = page[page.index('<form method="post" action="/patients/"'):]
    assert 'name="q"' in form[:form.index("</form>")] and 'autocomplete="off"' in form[:form.index("</form>")]


def _red_alert(patient: Patient) -> Alert:
    episode = patient.episodes.first()
    assert episode is not None
    rule = episode.program.rules.get(kind="threshold")
    return Alert.objects.create(patient=patient, rule=rule, rule_version=1, severity=Severity.RED,
                                reason="SpO2 85 %", evidence={}, source_key=f"t:{patient.pk}")


def test_filters_by_programme_open_alerts_missed_questionnaires_and_pause(cast, client):
    from schedules.models import Occurrence, OccurrenceStatus, Schedule

    second = make_patient("patient-c", "030350-3333", cast.team_a, cast.program_a, given_name="Carl")
    TreatmentEpisode.objects.create(patient=cast.patient_b, program=cast.program_a, care_team=cast.team_a,
                                    condition_code="DC34", treatment_start=date(2026, 1, 1))
    client.force_login(cast.clinician_a)
    a, b, c = str(cast.patient_a.pk), str(cast.patient_b.pk), str(second.pk)
    assert _listed(client.get("/patients/")) == {a, b, c}
    _red_alert(second)
    assert _listed(client.get("/patients/?open_alerts=on")) == {c}
    assert _listed(client.get(f"/patients/?program={cast.program_b.pk}")) == {b}
    Pause.objects.create(patient=cast.patient_a, starts_on=timezone.localdate() - timedelta(days=1),
                         reason="Holiday", created_by=cast.clinician_a)
    Pause.objects.create(patient=second, starts_on=timezone.localdate() - timedelta(days=10),
                         ends_on=timezone.localdate() - timedelta(days=2), reason="Over", created_by=cast.clinician_a)
    assert _listed(client.get("/patients/?paused=on")) == {a}
    schedule = Schedule.objects.create(program=cast.program_a, name="Once", questionnaire_url=cast.questionnaire.url,
                                       kind="once", params={"day": 0}, window=timedelta(days=2))
    now = timezone.now()
    Occurrence.objects.create(patient=cast.patient_b, episode=cast.patient_b.episodes.get(program=cast.program_a),
                              schedule=schedule, questionnaire_url=cast.questionnaire.url, opens_at=now,
                              due_at=now - timedelta(days=2), closes_at=now, status=OccurrenceStatus.MISSED)
    assert _listed(client.get("/patients/?missed=on")) == {b}
    assert _listed(client.get("/patients/?missed=on&paused=on")) == set()
    # A search keeps the filters it was sent with.
    assert _listed(_search(client, "Testsen", open_alerts="on")) == {c}


def test_filters_patients_with_answers_overdue_for_review_until_a_nurse_marks_them_reviewed(cast, client):
    from questionnaires.models import ResponseReview

    now = timezone.now()
    overdue = QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire, items=[],
                                                   author=cast.patient_a.user, review_due_at=now - timedelta(hours=1))
    QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire, items=[],
                                         author=cast.patient_a.user, review_due_at=now + timedelta(days=1))
    client.force_login(cast.clinician_a)
    assert _listed(client.get("/patients/?overdue_reviews=on")) == {str(cast.patient_a.pk)}
    ResponseReview.objects.create(response=overdue, reviewed_by=cast.clinician_a)
    assert _listed(client.get("/patients/?overdue_reviews=on")) == set()
    assert _listed(client.get("/patients/?overdue_reviews=nonsense")) == set()  # a checkbox: any value is "on"


def test_the_list_shows_cpr_age_programme_treatment_start_last_answer_reading_and_open_alerts(cast, client):
    _english(client)
    Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal("95"), unit="%",
                           effective_at=timezone.now() - timedelta(days=2), source=Source.DEVICE)
    QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=cast.questionnaire, items=[],
                                         author=cast.patient_a.user)
    _red_alert(cast.patient_a)
    client.force_login(cast.clinician_a)
    page = client.get("/patients/").content.decode()
    row = page[page.index(f'<tr data-patient="{cast.patient_a.pk}"'):]
    row = row[:row.index("</tr>")]
    today = timezone.localdate()
    age = today.year - 1950 - ((today.month, today.day) < (5, 17))
    assert CPR_A in row and "Testsen, Alma" in row and f">{age}<" in row and "Lung follow-up" in row
    start = cast.patient_a.episodes.get().treatment_start
    assert f"{start.day} {start:%b %Y}" in row  # "3 Dec 2026", the English short date
    assert row.count("<time") == 2 and "<strong>1</strong>" in row


def test_a_team_with_many_patients_is_paged_in_a_fixed_number_of_queries(cast, client,
                                                                         django_assert_max_num_queries):
    for i in range(PAGE_SIZE + 5):
        p = Patient.objects.create(cpr=f"0202{i:02d}-{i:04d}"[:11], given_name=f"P{i}", family_name=f"F{i:03d}",
                                   birth_date=date(1960, 1, 1), sex=Sex.MALE)
        TreatmentEpisode.objects.create(patient=p, program=cast.program_a, care_team=cast.team_a,
                                        condition_code="DC34", treatment_start=date(2026, 1, 1))
        Reading.objects.create(patient=p, measure="spo2", value=Decimal("95"), unit="%",
                               effective_at=timezone.now() - timedelta(hours=i), source=Source.DEVICE)
    client.force_login(cast.clinician_a)
    client.get("/patients/")  # session, language: warm
    with django_assert_max_num_queries(14):
        first = client.get("/patients/")
    assert len(_listed(first)) == PAGE_SIZE
    second = client.get("/patients/?page=2")
    assert len(_listed(second)) == 6  # 55 + patient A
    assert not _listed(first) & _listed(second)
    assert client.get("/patients/?page=999").status_code == 200  # the last page, not an error
    assert client.get("/patients/?page=abc").status_code == 200


def test_every_patient_page_starts_with_cpr_age_programme_team_and_treatment_start(cast, client):
    _english(client)
    client.force_login(cast.clinician_a)
    for url in (f"/patients/{cast.patient_a.pk}/", f"/patients/{cast.patient_a.pk}/readings/spo2/",
                f"/patients/{cast.patient_a.pk}/devices/", f"/patients/{cast.patient_a.pk}/devices/new/",
                f"/patients/{cast.patient_a.pk}/devices/{cast.device_a.pk}/",
                f"/patients/{cast.patient_a.pk}/pauses/new/"):
        page = client.get(url).content.decode()
        header = page[page.index('class="patient-header"'):]
        header = header[:header.index("</section>")]
        for text in (CPR_A, "years", "Lung follow-up", "Team A", "Treatment start"):
            assert text in header, (url, text)


def test_clinicians_have_the_patient_list_and_the_device_registry_in_the_navigation(cast, client):
    client.force_login(cast.clinician_a)
    nav = client.get("/triage/").content.decode()
    nav = nav[nav.index("<nav"):nav.index("</nav>")]
    assert 'href="/patients/"' in nav and 'href="/devices/"' in nav
    client.force_login(cast.patient_a.user)
    nav = client.get("/me/").content.decode()
    nav = nav[nav.index("<nav"):nav.index("</nav>")]
    assert 'href="/patients/"' not in nav and 'href="/devices/"' not in nav
