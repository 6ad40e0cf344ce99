"""“Patients like me” on the patient's answers page: the own score beside the median and
25th–75th percentile of similar patients at the same time since treatment start, only over at
least 20 of them; never the withdrawn, never other programmes, sexes or age bands."""

import itertools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from outcomes.peers import patient_peer_comparisons
from patients.models import Patient, Sex, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse
from tests.factories import make_cast

CPH = ZoneInfo("Europe/Copenhagen")
_n = itertools.count(5000)


def _answer(cast, patient, start, day, score):
    QuestionnaireResponse.objects.create(
        patient=patient, questionnaire=cast.questionnaire, items=[],
        scores=[{"code": {"code": "44261-6"}, "value": score}],
        authored_at=datetime.combine(start + timedelta(days=day), time(12), tzinfo=CPH))


def _peer(cast, start, score_3m, *, sex=Sex.FEMALE, birth=date(1950, 1, 1), withdrawn=False, program=None):
    i = next(_n)
    p = Patient.objects.create(cpr=f"0404{i % 90 + 10:02d}-{i:04d}", given_name="Peer", family_name="Peersen",
                               birth_date=birth, sex=sex,
                               secondary_use_withdrawn_at=timezone.now() if withdrawn else None)
    TreatmentEpisode.objects.create(patient=p, program=program or cast.program_a, care_team=cast.team_b,
                                    condition_code="DC34", treatment_start=start)
    _answer(cast, p, start, 0, 15)
    _answer(cast, p, start, 91, score_3m)
    return p


@pytest.fixture
def setting(db):
    cast = make_cast()
    start = timezone.localdate() - timedelta(days=200)
    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(treatment_start=start)
    _answer(cast, cast.patient_a, start, -1, 16)
    _answer(cast, cast.patient_a, start, 90, 9)
    return cast, start


def test_the_band_is_the_median_and_quartiles_of_twenty_similar_patients_at_the_same_timepoint(setting):
    cast, start = setting
    for score in range(20):  # 0..19: median 9.5, quartiles 4.75 and 14.25
        _peer(cast, start, score)
    _peer(cast, start, 27, withdrawn=True)
    _peer(cast, start, 27, sex=Sex.MALE)
    _peer(cast, start, 27, birth=date(1990, 1, 1))
    _peer(cast, start, 27, program=cast.program_b)
    (cmp,) = patient_peer_comparisons(patient_id=cast.patient_a.pk)
    three = next(p for p in cmp.points if p.timepoint in ("3 måneder", "3 months"))
    assert (three.own, three.peers, three.median, three.q1, three.q3) == (9, 20, 9.5, 4.75, 14.25)
    html = _page(cast)
    assert "9,5" in html and ("4,8–14,2" in html or "4,8–14,3" in html)


def test_with_nineteen_similar_patients_the_page_says_why_there_is_no_band(setting):
    cast, start = setting
    for score in range(19):
        _peer(cast, start, score)
    (cmp,) = patient_peer_comparisons(patient_id=cast.patient_a.pk)
    assert all(p.median is None for p in cmp.points)
    html = _page(cast)
    assert "kun 19 lignende patienter" in html
    assert "Peersen" not in html


def _page(cast):
    client = Client()
    client.force_login(cast.patient_a.user)
    answer = client.get("/me/answers/")
    assert answer.status_code == 200
    return answer.content.decode()


def test_the_clinician_sees_the_same_comparison_on_the_patient_page(setting):
    cast, start = setting
    for score in range(20):
        _peer(cast, start, score)
    client = Client()
    client.force_login(cast.clinician_a)
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert "dig og patienter som dig" in html and "9,5" in html and "Peersen" not in html
