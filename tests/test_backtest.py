"""Back-testing a candidate rule set against the last N days: counts per rule and per patient
beside the current rules, collapsed into alerts the way live evaluation does, never seeing the
future, writing nothing; an admin-only page with errors next to the fields."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from alerts.backtest import backtest_run
from alerts.models import Alert, AlertEvent, AlertFinding, Rule, RuleError, Snooze
from alerts.selectors_readings import readings_unevaluated_ids
from audit.models import AuditEvent
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from schedules.models import MissedOccurrence, Occurrence, OccurrenceStatus, Schedule

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _spo2(patient, value, days_ago, *, received_later=timedelta(0)):
    at = NOW - timedelta(days=days_ago)
    return Reading.objects.create(patient=patient, measure="spo2", value=Decimal(value), unit="%", effective_at=at,
                                  received_at=at + received_later, source=Source.DEVICE)


def _threshold(cast, program=None):
    return Rule.objects.get(program=program or cast.program_a, kind="threshold")


@pytest.fixture
def history(cast):
    """Patient A: SpO2 90, 89, 95, 91 over four days; patient B: 93."""
    for value, days in (("90", 5), ("89", 4), ("95", 3), ("91", 2)):
        _spo2(cast.patient_a, value, days)
    _spo2(cast.patient_b, "93", 2)
    _spo2(cast.patient_a, "80", 40)  # before the period: not replayed


def test_current_rules_never_resolved_raise_one_alert_per_patient_and_rule(cast, history):
    result = backtest_run(candidate=[], days=30, resolve_after=None, now=NOW)
    counts = result.by_spec[f"rule:{_threshold(cast).pk}"]
    assert (counts.alerts, counts.red, counts.findings) == (1, 1, 3)
    assert result.by_patient == {cast.patient_a.pk: [1, 1]}
    assert result.events["readings"] == 5


def test_alerts_resolved_after_a_day_let_later_findings_raise_new_alerts(cast, history):
    result = backtest_run(candidate=[], days=30, resolve_after=timedelta(hours=24), now=NOW)
    # 90 (day 5) raises; 89 (day 4, exactly 24 h later) finds it resolved: a second alert; 91 a third.
    assert result.by_spec[f"rule:{_threshold(cast).pk}"].alerts == 3


def test_cooldown_after_resolution_keeps_lower_or_equal_findings_on_the_resolved_alert(cast, history):
    rule = _threshold(cast)
    result = backtest_run(candidate=[{"rule": rule.pk, "cooldown_hours": 72}], days=30,
                          resolve_after=timedelta(hours=12), now=NOW)
    rows = {r["spec"].rule_id: r for r in result.rows() if r["spec"].rule_id == rule.pk}
    assert rows[rule.pk]["current"].alerts == 3
    assert rows[rule.pk]["candidate"].alerts == 1
    assert rows[rule.pk]["change"] == "changed"


def test_a_changed_limit_is_counted_beside_the_current_one_per_rule_and_per_patient(cast, history):
    rule_a, rule_b = _threshold(cast), _threshold(cast, cast.program_b)
    result = backtest_run(candidate=[{"rule": rule_a.pk, "params": {"low": 90}},
                                     {"rule": rule_b.pk, "params": {"low": 94}}], days=30,
                          resolve_after=timedelta(hours=12), now=NOW)
    [row] = [r for r in result.rows() if r["spec"].rule_id == rule_a.pk]
    assert (row["current"].alerts, row["candidate"].alerts) == (3, 1)  # only 89 is below 90
    # patient B's 93 is below 94: the candidate raises for B too
    assert result.by_patient == {cast.patient_a.pk: [3, 1], cast.patient_b.pk: [0, 1]}
    assert result.totals["current"].alerts == 3 and result.totals["candidate"].alerts == 2


def test_a_rule_left_out_and_a_new_rule_are_counted_on_their_side_only(cast, history):
    rule = _threshold(cast)
    result = backtest_run(candidate=[
        {"rule": rule.pk, "active": False},
        {"program": "lung", "kind": "threshold", "name": "SpO2 below 90", "severity": "yellow",
         "params": {"measure": "spo2", "low": 90}},
    ], days=30, resolve_after=None, now=NOW)
    rows = {r["spec"].rule_id or r["spec"].name: r for r in result.rows()}
    assert rows[rule.pk]["change"] == "removed" and rows[rule.pk]["candidate"] is None
    new = rows["SpO2 below 90"]
    assert new["change"] == "new" and new["current"] is None
    assert (new["candidate"].alerts, new["candidate"].yellow) == (1, 1)
    assert result.by_patient[cast.patient_a.pk] == [1, 1]


def test_the_replay_writes_nothing(cast, history):
    from alerts.evaluation import Source as EvaluationSource
    from alerts.evaluation import enqueue

    enqueue(source=EvaluationSource.READING, after_commit=False, ids=list(Reading.objects.values_list("id", flat=True)))
    before = [m.objects.count() for m in (Alert, AlertFinding, AlertEvent, RuleError)]
    backtest_run(candidate=[{"program": "lung", "kind": "news2", "severity": "yellow", "params": {}}], days=30,
                 resolve_after=None, now=NOW)
    assert [m.objects.count() for m in (Alert, AlertFinding, AlertEvent, RuleError)] == before
    assert readings_unevaluated_ids() == set(Reading.objects.values_list("id", flat=True))


def test_a_rule_never_sees_data_that_had_not_arrived_yet(cast):
    # The oximeter measured 88 three hours before the answer, but uploaded it an hour after it:
    # only the reading completes the pair (as live evaluation would have seen it).
    rule = {"program": "lung", "kind": "combination", "severity": "red", "name": "Pair",
            "params": {"answer": {"questionnaire": cast.questionnaire.url, "link_id": "breathless",
                                  "min_grade": 1},
                       "reading": {"measure": "spo2", "comparison": "<", "value": 92}}}
    answered = NOW - timedelta(days=2)
    _spo2(cast.patient_a, "88", 2 + 3 / 24, received_later=timedelta(hours=4))
    QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, authored_at=answered, received_at=answered,
        items=[{"linkId": "breathless", "text": "Forpustet?",
                "answer": [{"valueCoding": {"code": "much-worse", "display": "Meget mere"}}]}])
    result = backtest_run(candidate=[rule], days=30, resolve_after=None, now=NOW)
    counts = result.by_spec["new:1"]
    assert (counts.alerts, counts.findings) == (1, 1)


def test_a_snooze_active_at_the_time_drops_the_findings_it_covers(cast, history):
    Snooze.objects.create(patient=cast.patient_a, measure="spo2", low=Decimal("89"), high=Decimal("91"),
                          until=NOW, reason="usual level", created_by=cast.clinician_a,
                          created_at=NOW - timedelta(days=10))
    result = backtest_run(candidate=[], days=30, resolve_after=None, now=NOW)
    assert result.by_spec[f"rule:{_threshold(cast).pk}"].findings == 0


def test_missed_questionnaires_are_replayed_after_the_rules_grace(cast):
    schedule = Schedule.objects.create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                                       kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                                       window=timedelta(hours=12))
    due = NOW - timedelta(days=3)
    occurrence = Occurrence.objects.create(
        patient=cast.patient_a, episode=cast.patient_a.episodes.get(), schedule=schedule,
        questionnaire_url=schedule.questionnaire_url, opens_at=due, due_at=due, closes_at=due + schedule.window,
        status=OccurrenceStatus.MISSED)
    MissedOccurrence.objects.create(occurrence=occurrence, recorded_at=occurrence.closes_at)
    result = backtest_run(candidate=[{"program": "lung", "kind": "missed", "severity": "yellow",
                                      "params": {"grace_hours": 6}}], days=30, resolve_after=None, now=NOW)
    assert result.by_spec["new:1"].alerts == 1 and result.events["missed"] == 1


def test_a_failing_candidate_rule_is_counted_as_errors_and_the_others_still_count(cast, history, monkeypatch):
    import types

    from alerts.rules import KINDS, threshold

    def evaluate_reading(params, reading, ctx):
        raise RuntimeError("deliberately broken")

    monkeypatch.setitem(KINDS, "broken", types.SimpleNamespace(Params=threshold.Params,
                                                               evaluate_reading=evaluate_reading))
    result = backtest_run(candidate=[{"program": "lung", "kind": "broken", "params": {"measure": "spo2", "low": 92}}],
                          days=30, resolve_after=None, now=NOW)
    assert result.by_spec["new:1"].errors == 4
    assert result.by_spec[f"rule:{_threshold(cast).pk}"].alerts == 1


def test_reading_history_is_read_with_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    for i in range(60):
        _spo2(cast.patient_a, "90" if i % 2 else "97", 1 + i / 10)
    with django_assert_max_num_queries(12):
        result = backtest_run(candidate=[{"program": "lung", "kind": "news2", "params": {"min_parameters": 1},
                                          "severity": "yellow"}], days=30, resolve_after=None, now=NOW)
    assert result.events["readings"] == 60


@pytest.mark.parametrize(("candidate", "message"), [
    ([{"rule": 99999, "params": {}}], "Entry 1: no active rule has id 99999."),
    ([{"program": "lung", "kind": "nope"}], "Entry 1: unknown kind 'nope'"),
    ([{"program": "nowhere", "kind": "news2"}], "Entry 1: give \"program\" as the slug"),
    ([{"program": "lung", "kind": "news2", "params": {"yellow_total": 8}}], "yellow_total must be below red_total"),
    ([{"program": "lung", "kind": "news2", "severity": "purple"}], "\"severity\" must be"),
    ([{"program": "lung", "kind": "news2", "colour": "red"}], "unknown keys colour"),
])
def test_invalid_candidates_are_refused_naming_the_entry(cast, candidate, message):
    from django.core.exceptions import ValidationError

    with translation.override("en"), pytest.raises(ValidationError) as exc:
        backtest_run(candidate=candidate, days=30, resolve_after=None, now=NOW)
    assert any(message in m for m in exc.value.messages), exc.value.messages


# --- the page -----------------------------------------------------------------------------------

URL = "/rules/backtest/"


def test_admin_runs_a_backtest_and_sees_counts_per_rule_and_patient_by_name(cast, history, client):
    client.force_login(cast.admin)
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200 and "SpO2 below 92 %" in html
    assert "<textarea" not in html and "JSON" not in html and '"low"' not in html  # typed fields only
    rule_a = _threshold(cast)
    response = client.post(URL, {"days": "30", "resolve_after_hours": "12", "leave_out": [str(rule_a.pk)]},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alma Testsen" in html and "12 hours after it was raised" in html
    # Patient B's 93 is above B's programme's limit: no alert with either set, so not listed.
    assert {p["name"]: (p["current"], p["candidate"]) for p in response.context["patients"]} == {
        "Alma Testsen": (3, 0)}
    row = next(r for r in response.context["rows"] if r["spec"].rule_id == rule_a.pk)
    assert row["change"] == "removed" and row["candidate"] is None and row["kind_label"] == "Limit on a measurement"
    reads = set(AuditEvent.objects.filter(user=cast.admin, action="read", resource__contains="backtest")
                .values_list("patient_ref", flat=True))
    assert cast.patient_a.pk in reads
    assert AuditEvent.objects.filter(user=cast.admin, action="search", resource="Alert?backtest").count() == 1
    assert not Alert.objects.exists()


@pytest.mark.parametrize(("data", "field", "text"), [
    ({"days": "0"}, "days", ""),
    ({"days": "abc"}, "days", ""),
    ({"days": "91"}, "days", ""),
    ({"days": "30", "resolve_after_hours": "-2"}, "resolve_after_hours", ""),
    ({"days": "30", "leave_out": ["999999"]}, "leave_out", ""),
])
def test_bad_input_is_shown_next_to_its_field_in_danish_and_nothing_is_run(cast, client, data, field, text):
    client.force_login(cast.admin)
    response = client.post(URL, data, HTTP_ACCEPT_LANGUAGE="da")
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors and text in " ".join(form.errors[field])
    assert response.context["result"] is None
    assert f'id="id_{field}-errors"' in response.content.decode()
    assert not AuditEvent.objects.filter(resource="Alert?backtest").exists()


API = "/api/v1/rules/backtest"


def test_the_json_candidate_lives_in_the_api_and_answers_counts_per_rule_and_visible_patient(cast, history, client):
    client.force_login(cast.admin)
    rule_b = _threshold(cast, cast.program_b)
    response = client.post(API, {"days": 30, "resolve_after_hours": 12,
                                 "candidate": [{"rule": rule_b.pk, "params": {"low": 94}}]},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    row = next(r for r in body["rules"] if r["rule"] == rule_b.pk)
    assert (row["change"], row["current"]["alerts"], row["candidate"]["alerts"]) == ("changed", 0, 1)
    assert {p["id"]: (p["current"], p["candidate"]) for p in body["patients"]} == {
        str(cast.patient_a.pk): (3, 3), str(cast.patient_b.pk): (0, 1)}
    assert AuditEvent.objects.filter(user=cast.admin, resource="Alert?backtest (API)").count() == 1
    assert not Alert.objects.exists()


@pytest.mark.parametrize(("data", "field"), [
    ({"days": 0}, "days"),
    ({"days": 30, "candidate": "not a list"}, "candidate"),
    ({"days": 30, "candidate": [{"program": "lung", "kind": "news2", "params": {"window_hours": 0}}]}, "candidate"),
    ({"days": 30, "candidate": [{"rule": 999999}]}, "candidate"),
])
def test_bad_api_input_is_a_400_naming_the_field(cast, client, data, field):
    client.force_login(cast.admin)
    response = client.post(API, data, content_type="application/json")
    assert response.status_code == 400 and field in response.json()


@pytest.mark.parametrize("who", ["clinician_a", "quality", "patient_a"])
def test_only_administrators_may_backtest_through_the_api(cast, client, who):
    user = getattr(cast, who)
    client.force_login(getattr(user, "user", user))
    assert client.post(API, {"days": 30}, content_type="application/json").status_code == 403


@pytest.mark.parametrize("who", ["clinician_a", "quality", "patient_a"])
def test_only_administrators_may_backtest(cast, client, who):
    user = getattr(cast, who)
    client.force_login(getattr(user, "user", user))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"days": "30"}).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]
