"""Rule kind ``score``: score and item-grade limits, and worsening against the previous response
(any version of the questionnaire) or the pre-treatment baseline (Basch: worse by >= 2 grades)."""

import copy
from datetime import datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone, translation

from alerts.definitions import rule_save
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, AlertFinding, Rule
from alerts.rules.context import Context
from patients.models import Patient
from questionnaires.library import load, load_scoring
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseStatus
from questionnaires.services import questionnaire_import, questionnaire_revise, response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db

PHQ9 = "https://proplatform.example/fhir/Questionnaire/phq-9"
ESAS = "https://proplatform.example/fhir/Questionnaire/esas-r"
LUNG = "https://proplatform.example/fhir/Questionnaire/lung-followup"
PHQ9_CODES = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]  # 0, 1, 2, 3


def _import(name: str) -> Questionnaire:
    questionnaire = questionnaire_import(resource=load(name))
    scoring = load_scoring(name)
    if scoring is not None:
        Questionnaire.objects.filter(pk=questionnaire.pk).update(scoring=scoring)
        questionnaire.refresh_from_db()
    return questionnaire


def _rule(cast, name="score rule", **params):
    Rule.objects.filter(kind__in=["threshold", "answer"]).update(active=False)
    return rule_save(rule=Rule(program=cast.program_a, kind="score", name=name, severity="yellow",
                               params=params), by=cast.admin)


def _answer(cast, questionnaire, at: datetime, **answers):
    response = response_submit(patient=cast.patient_a, questionnaire=questionnaire, author=cast.patient_a.user,
                               items=response_items(questionnaire, answers), authored_at=at)
    response_evaluate(response_id=response.pk)
    return response


def _phq9(cast, questionnaire, at, total: int):
    grades = [min(3, max(0, total - 3 * i)) for i in range(9)]
    assert sum(grades) == total
    return _answer(cast, questionnaire, at, **{f"phq9-{i + 1}": PHQ9_CODES[g] for i, g in enumerate(grades)})


def _fired(response, rule=None):
    # This kind's findings: the instruments' safety nets (test_rules_safety.py) add their own.
    rows = AlertFinding.objects.filter(rule__kind="score", source_key=f"response:{response.pk}")
    if rule is not None:
        rows = rows.filter(rule=rule)
    return rows.exists()


@pytest.fixture
def day(cast):
    """Day n after patient A's treatment start (30 days ago), at 10:00 local time. Patient A was
    registered well before (answers before enrolment are refused)."""
    cast.patient_a.created_at = timezone.now() - timedelta(days=60)
    Patient.objects.filter(pk=cast.patient_a.pk).update(created_at=cast.patient_a.created_at)
    start = timezone.localdate() - timedelta(days=30)
    return lambda n: timezone.make_aware(datetime.combine(start + timedelta(days=n), time(10)))


# --- score limits ----------------------------------------------------------------------------

def test_phq9_total_at_the_limit_fires_and_just_below_does_not(cast, day):
    phq9 = _import("phq-9")
    _rule(cast, questionnaire=PHQ9, score="44261-6", limit=10)
    assert not _fired(_phq9(cast, phq9, day(1), 9))
    with translation.override("en"):
        at_limit = _phq9(cast, phq9, day(2), 10)
    assert _fired(at_limit)
    alert = Alert.objects.get(rule__kind="score")
    assert alert.severity == "yellow"
    assert alert.reason == "Patient Health Questionnaire 9 item (PHQ-9) total score: 10 is at or above the limit of 10."
    assert alert.evidence["fired"] == [{"key": "44261-6", "value": "10", "limit": "10"}]


def test_a_response_without_the_score_raises_nothing(cast, day):
    _rule(cast, questionnaire=LUNG, score="44261-6", limit=1)
    lung = _import("lung-followup")
    assert not _fired(_answer(cast, lung, day(1), pain="much-worse"))


# --- worsening against the previous response ----------------------------------------------------

def test_phq9_worse_by_five_since_the_previous_response(cast, day):
    phq9 = _import("phq-9")
    _rule(cast, questionnaire=PHQ9, score="44261-6", worse_by=5)
    first = _phq9(cast, phq9, day(1), 3)
    plus_four = _phq9(cast, phq9, day(8), 7)
    with translation.override("en"):
        plus_five = _phq9(cast, phq9, day(15), 12)
    better = _phq9(cast, phq9, day(22), 4)
    assert [_fired(r) for r in (first, plus_four, plus_five, better)] == [False, False, True, False]
    alert = Alert.objects.get(rule__kind="score")
    assert alert.reason.startswith(
        "Patient Health Questionnaire 9 item (PHQ-9) total score worse by 5 since the previous answer of ")
    assert alert.reason.endswith("(7 → 12); limit 5.")
    assert alert.evidence["compared_with"]["response_id"] == plus_four.pk


def test_a_symptom_worse_by_two_grades_fires_as_basch_did(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-pain", "esas-breath"], worse_by=2)
    trajectory = [("1", "0"), ("2", "0"), ("4", "1"), ("3", "3"), ("3", "6")]
    responses = [_answer(cast, esas, day(7 * i + 1), **{"esas-pain": p, "esas-breath": b})
                 for i, (p, b) in enumerate(trajectory)]
    # pain 1→2 (+1), 2→4 (+2: fires), 4→3; breath 1→3 (+2: fires), 3→6 (+3: fires)
    assert [_fired(r) for r in responses] == [False, False, True, True, True]
    with translation.override("en"):
        response_last = _answer(cast, esas, timezone.now(), **{"esas-pain": "6", "esas-breath": "9"})
    reason = AlertFinding.objects.get(rule__kind="score", source_key=f"response:{response_last.pk}").reason
    # Both items are named, each with its own change.
    assert "worse by 3 since the previous answer" in reason
    assert "(3 → 6); limit 2." in reason and "(6 → 9); limit 2." in reason


def test_the_first_response_has_nothing_to_compare_with(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-pain"], worse_by=2)
    assert not _fired(_answer(cast, esas, day(1), **{"esas-pain": "10"}))


def test_a_draft_is_not_the_previous_response(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-pain"], worse_by=2)
    _answer(cast, esas, day(1), **{"esas-pain": "5"})
    QuestionnaireResponse.objects.create(patient=cast.patient_a, questionnaire=esas, status=ResponseStatus.IN_PROGRESS,
                                         items=response_items(esas, {"esas-pain": "0"}), authored_at=day(2))
    assert not _fired(_answer(cast, esas, day(3), **{"esas-pain": "6"}))


def test_lower_is_worse_compares_the_other_way(cast, day):
    lung = _import("lung-followup")
    _rule(cast, questionnaire=LUNG, items=["weight"], higher_is_worse=False, worse_by=3)
    _answer(cast, lung, day(1), weight=70)
    heavier = _answer(cast, lung, day(8), weight=75)
    lost_2_9 = _answer(cast, lung, day(15), weight=72.1)
    lost_exactly_3 = _answer(cast, lung, day(22), weight=69.1)
    assert [_fired(r) for r in (heavier, lost_2_9, lost_exactly_3)] == [False, False, True]


# --- worsening against the baseline --------------------------------------------------------------

def test_baseline_is_the_last_response_before_treatment_start(cast, day):
    esas = _import("esas-r")
    against_baseline = _rule(cast, "baseline", questionnaire=ESAS, items=["esas-pain"], worse_by=2,
                             against="baseline")
    against_previous = _rule(cast, "previous", questionnaire=ESAS, items=["esas-pain"], worse_by=2)
    _answer(cast, esas, day(-5), **{"esas-pain": "4"})  # an older pre-treatment answer
    baseline = _answer(cast, esas, day(0) - timedelta(hours=2), **{"esas-pain": "1"})  # morning of day 0
    second = _answer(cast, esas, day(7), **{"esas-pain": "2"})
    third = _answer(cast, esas, day(14), **{"esas-pain": "3"})
    assert not _fired(second, against_baseline)
    assert _fired(third, against_baseline) and not _fired(third, against_previous)
    finding = AlertFinding.objects.get(rule__kind="score", source_key=f"response:{third.pk}")
    assert finding.evidence["compared_with"]["response_id"] == baseline.pk
    assert "baseline" in finding.evidence["compared_with"]["against"]


def test_without_a_pre_treatment_answer_the_baseline_is_the_first_one_after_start(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-pain"], worse_by=2, against="baseline")
    first = _answer(cast, esas, day(3), **{"esas-pain": "2"})
    _answer(cast, esas, day(10), **{"esas-pain": "3"})
    later = _answer(cast, esas, day(17), **{"esas-pain": "4"})
    assert not _fired(first)
    assert _fired(later)
    assert AlertFinding.objects.get(rule__kind="score").evidence["compared_with"]["response_id"] == first.pk


# --- questionnaire versions --------------------------------------------------------------------

def _esas_v2(esas, *, rename_other: bool = False, regrade: bool = False):
    resource = copy.deepcopy(esas.resource)
    pain = resource["item"][0]["item"][0]
    assert pain["linkId"] == "esas-pain"
    pain["text"] = pain["text"] + " (nu)"
    if rename_other:  # an unscored item (a scored one would no longer fit the scoring)
        other = next(i for i in resource["item"][0]["item"] if i["linkId"] == "esas-other")
        other["linkId"] = "esas-other-now"
    if regrade:  # a version whose options are worth double
        for option in pain["answerOption"]:
            for ext in option.get("extension", []):
                if ext["url"].endswith("ordinalValue"):
                    ext["valueDecimal"] = ext["valueDecimal"] * 2
    return questionnaire_revise(questionnaire=esas, resource=resource)


def test_the_previous_response_may_have_answered_an_older_version(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-pain"], worse_by=2)
    _answer(cast, esas, day(1), **{"esas-pain": "1"})
    v2 = _esas_v2(esas)
    assert v2.version == "2"
    response = _answer(cast, v2, day(8), **{"esas-pain": "3"})
    assert _fired(response)
    assert AlertFinding.objects.get(rule__kind="score").evidence["compared_with"]["version"] == "1"


def test_each_version_is_graded_by_its_own_option_values(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-pain"], worse_by=2)
    _answer(cast, esas, day(1), **{"esas-pain": "2"})  # grade 2 in v1
    v2 = _esas_v2(esas, regrade=True)
    response = _answer(cast, v2, day(8), **{"esas-pain": "2"})  # grade 4 in v2
    assert _fired(response)


def test_an_item_the_new_version_renamed_is_not_compared(cast, day):
    esas = _import("esas-r")
    _rule(cast, questionnaire=ESAS, items=["esas-other-now"], worse_by=2)
    _answer(cast, esas, day(1), **{"esas-other": "0"})
    v2 = _esas_v2(esas, rename_other=True)
    assert not _fired(_answer(cast, v2, day(8), **{"esas-other-now": "9"}))
    # ... while the same rule compares two answers to the new version
    assert _fired(_answer(cast, v2, day(15), **{"esas-other-now": "0"})) is False
    assert _fired(_answer(cast, v2, day(22), **{"esas-other-now": "2"}))


# --- the history the rule sees ----------------------------------------------------------------

def test_back_testing_does_not_see_responses_received_after_its_moment(cast, day):
    esas = _import("esas-r")
    early = _answer(cast, esas, day(1), **{"esas-pain": "1"})
    later = _answer(cast, esas, day(5), **{"esas-pain": "1"})
    QuestionnaireResponse.objects.update(received_at=F("authored_at"))  # each uploaded as it was given
    judged_at = day(9)
    assert Context(now=judged_at).previous_response(
        cast.patient_a.pk, ESAS, authored_at=judged_at, response_id=10**9).id == later.pk
    assert Context(now=day(3), as_of=day(3)).previous_response(
        cast.patient_a.pk, ESAS, authored_at=judged_at, response_id=10**9).id == early.pk


def test_of_two_responses_authored_the_same_second_the_earlier_id_is_previous(cast, day):
    esas = _import("esas-r")
    one = _answer(cast, esas, day(1), **{"esas-pain": "1"})
    two = _answer(cast, esas, day(1), **{"esas-pain": "1"})
    ctx = Context(now=day(2))
    assert ctx.previous_response(cast.patient_a.pk, ESAS, authored_at=day(1), response_id=two.pk).id == one.pk
    assert ctx.previous_response(cast.patient_a.pk, ESAS, authored_at=day(1), response_id=one.pk) is None


# --- invalid definitions are refused when saved ----------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"questionnaire": PHQ9, "limit": 10}, "either score"),
    ({"questionnaire": PHQ9, "score": "44261-6", "items": ["phq9-1"], "limit": 10}, "either score"),
    ({"questionnaire": PHQ9, "score": "44261-6"}, "give limit, worse_by or both"),
    ({"questionnaire": PHQ9, "score": "44261-6", "worse_by": 0}, "worse_by must be more than 0"),
    ({"questionnaire": PHQ9, "score": "44261-6", "worse_by": -2}, "worse_by must be more than 0"),
    ({"questionnaire": PHQ9, "items": ["a", "a"], "limit": 1}, "listed twice"),
    ({"questionnaire": PHQ9, "score": "44261-6", "limit": 1, "against": "first"}, "against"),
    ({"score": "44261-6", "limit": 1}, "questionnaire"),
])
def test_an_invalid_score_rule_is_refused_with_a_clear_message(cast, params, message):
    with pytest.raises(ValidationError, match=message):
        rule_save(rule=Rule(program=cast.program_a, kind="score", name="bad", severity="red", params=params),
                  by=cast.admin)
    assert not Rule.objects.filter(name="bad").exists()
