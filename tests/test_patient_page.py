"""The clinician's patient page (issue 19, item 6): one timeline, newest first and bounded; each
alert's actions inside its own panel; a snooze only under an alert about a measured level, and
it resolves nothing unless the nurse ticks the box."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, Snooze, Status
from alerts.rules import snooze_target
from alerts.rules import threshold as threshold_kind
from audit.models import AuditEvent
from clinic.timeline import READING_LIMIT, patient_timeline, timeline_days
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from schedules.models import Pause
from tests.factories import evaluate

pytestmark = pytest.mark.django_db


def _reading(patient, value, *, ago=timedelta(minutes=5), measure="spo2", unit="%"):
    return Reading.objects.create(patient=patient, measure=measure, value=Decimal(value), unit=unit,
                                  effective_at=timezone.now() - ago, source=Source.DEVICE)


def _red(patient, value="88"):
    evaluate([_reading(patient, value).pk])
    return Alert.objects.get(patient=patient, rule__kind="threshold", status__in=["open", "acknowledged"])


def _contact_me(cast, patient):
    response = QuestionnaireResponse.objects.create(
        patient=patient, questionnaire=cast.questionnaire, author=patient.user,
        items=[{"linkId": "contact", "text": "Vil du gerne kontaktes af os?", "answer": [{"valueBoolean": True}]}])
    response_evaluate(response_id=response.pk)
    return Alert.objects.get(patient=patient, rule__kind="answer", status__in=["open", "acknowledged"])


def _panel(html: str, alert: Alert) -> str:
    """The alert's <article> on the page."""
    found = re.search(rf'<article id="alert-{alert.pk}".*?</article>', html, re.S)
    assert found, f"no panel for alert {alert.pk}"
    return found.group(0)


def _snooze_post(alert: Alert, **extra: str) -> dict[str, str]:
    p = f"snooze-{alert.pk}-"
    until = (timezone.localtime() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    data = {p + "measure": "spo2", p + "component": "value", p + "low": "86", p + "high": "91",
            p + "until": until, p + "reason": "KOL, vanligt niveau"}
    return data | {p + k: v for k, v in extra.items()}


def test_a_snooze_from_one_alert_leaves_that_alert_and_every_other_alert_open(cast, client):
    spo2 = _red(cast.patient_a)
    contact = _contact_me(cast, cast.patient_a)
    client.force_login(cast.clinician_a)

    response = client.post(f"/patients/{cast.patient_a.pk}/alerts/{spo2.pk}/snooze/", _snooze_post(spo2))

    assert response.status_code == 302
    assert Snooze.objects.filter(patient=cast.patient_a, measure="spo2").count() == 1
    assert Alert.objects.get(pk=spo2.pk).status != Status.RESOLVED
    assert Alert.objects.get(pk=contact.pk).status != Status.RESOLVED


def test_a_snooze_resolves_its_own_alert_only_when_the_box_is_ticked_and_never_another(cast, client):
    spo2 = _red(cast.patient_a)
    contact = _contact_me(cast, cast.patient_a)
    client.force_login(cast.clinician_a)

    client.post(f"/patients/{cast.patient_a.pk}/alerts/{spo2.pk}/snooze/", _snooze_post(spo2, resolve="on"))

    assert Alert.objects.get(pk=spo2.pk).status == Status.RESOLVED
    assert Alert.objects.get(pk=contact.pk).status == Status.OPEN


def test_the_snooze_under_a_measured_alert_is_prefilled_with_its_measure_and_nothing_is_ticked(cast, client):
    spo2 = _red(cast.patient_a)
    client.force_login(cast.clinician_a)

    panel = _panel(client.get(f"/patients/{cast.patient_a.pk}/").content.decode(), spo2)

    assert f"/alerts/{spo2.pk}/snooze/" in panel
    assert re.search(r'<option value="spo2" selected>', panel)
    resolve_box = re.search(rf'<input type="checkbox" name="snooze-{spo2.pk}-resolve"[^>]*>', panel)
    assert resolve_box and "checked" not in resolve_box.group(0)


def test_there_is_no_snooze_form_under_a_contact_me_alert(cast, client):
    contact = _contact_me(cast, cast.patient_a)
    client.force_login(cast.clinician_a)

    panel = _panel(client.get(f"/patients/{cast.patient_a.pk}/").content.decode(), contact)

    assert "/snooze/" not in panel and "snooze-" not in panel
    assert f"/alerts/{contact.pk}/resolve/" in panel  # its own actions are there


def test_a_snooze_posted_against_a_contact_me_alert_is_refused_and_the_alert_stays_open(cast, client):
    contact = _contact_me(cast, cast.patient_a)
    client.force_login(cast.clinician_a)

    response = client.post(f"/patients/{cast.patient_a.pk}/alerts/{contact.pk}/snooze/",
                           _snooze_post(contact, resolve="on"), follow=True)

    assert response.status_code == 200
    assert "Denne alarm handler ikke om et målt niveau og kan derfor ikke udsættes." in response.content.decode()
    assert not Snooze.objects.exists()
    assert Alert.objects.get(pk=contact.pk).status == Status.OPEN


def test_only_kinds_whose_findings_carry_a_snooze_name_a_snooze_target(cast):
    reading = _reading(cast.patient_a, "88")
    params = threshold_kind.Params(measure="spo2", low=Decimal(92))
    finding = threshold_kind.evaluate_reading(params, reading, None)
    assert finding is not None and finding.snooze is not None
    assert snooze_target("threshold", finding.evidence) == finding.snooze[:2]
    assert snooze_target("answer", {"measure": "spo2"}) is None
    assert snooze_target("change", {"measure": "weight"}) is None


def test_each_alert_panel_folds_its_details_and_holds_its_own_actions(cast, client):
    spo2 = _red(cast.patient_a)
    contact = _contact_me(cast, cast.patient_a)
    client.force_login(cast.clinician_a)
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()

    for alert in (spo2, contact):
        panel = _panel(html, alert)
        assert '<details class="alert-more">' in panel  # closed until opened
        for action in ("acknowledge", "resolve", "assign"):
            assert f"/alerts/{alert.pk}/{action}/" in panel
        other = contact if alert is spo2 else spo2
        assert f"/alerts/{other.pk}/" not in panel


def test_the_timeline_merges_readings_answers_alerts_pauses_and_treatment_start_newest_first(cast, client):
    episode = cast.patient_a.episodes.get()
    episode.treatment_start = timezone.localdate() - timedelta(days=10)
    episode.save()
    Pause.objects.create(patient=cast.patient_a, starts_on=timezone.localdate() - timedelta(days=5),
                         ends_on=timezone.localdate() - timedelta(days=3), reason="Indlagt",
                         created_by=cast.clinician_a)
    _reading(cast.patient_a, "96", ago=timedelta(days=2))
    alert = _red(cast.patient_a, "88")
    contact = _contact_me(cast, cast.patient_a)
    _reading(cast.patient_a, "97", ago=timedelta(days=40))  # outside the 30 days

    timeline = patient_timeline(cast.patient_a, days=30, now=timezone.now())

    kinds = [e.kind for e in timeline.entries]
    assert sorted(set(kinds)) == ["alert", "pause", "reading", "response", "start"]
    assert [e.at for e in timeline.entries] == sorted((e.at for e in timeline.entries), reverse=True)
    assert kinds[-2:] == ["pause", "start"]
    assert len([k for k in kinds if k == "reading"]) == 2
    response_entry = next(e for e in timeline.entries if e.kind == "response")
    assert response_entry.colour == "yellow" and response_entry.colours[0]["link_id"] == "contact"
    assert {e.obj for e in timeline.entries if e.kind == "alert"} == {alert, contact}
    assert timeline.earlier_days == 90

    client.force_login(cast.clinician_a)
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert 'id="timeline"' in html and "Indlagt" in html and "?days=90#timeline" in html
    longer = client.get(f"/patients/{cast.patient_a.pk}/?days=90").content.decode()
    assert longer.count("tl-reading") == html.count("tl-reading") + 1


@pytest.mark.parametrize("asked", ["abc", "-1", "7", "", "99999999999999999999"])
def test_a_period_the_page_does_not_offer_shows_the_last_30_days(cast, client, asked):
    assert timeline_days(asked) == 30
    client.force_login(cast.clinician_a)
    assert client.get(f"/patients/{cast.patient_a.pk}/", {"days": asked}).status_code == 200


def test_the_timeline_shows_at_most_the_reading_limit_and_says_so(cast):
    Reading.objects.bulk_create([
        Reading(patient=cast.patient_a, measure="spo2", value=Decimal(95), unit="%", source=Source.DEVICE,
                effective_at=timezone.now() - timedelta(minutes=i + 1)) for i in range(READING_LIMIT + 3)])
    timeline = patient_timeline(cast.patient_a, days=30, now=timezone.now())
    assert len([e for e in timeline.entries if e.kind == "reading"]) == READING_LIMIT and timeline.readings_cut


def test_answers_in_the_timeline_are_audited_as_read_naming_the_patient(cast, client):
    responses = [QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=[{"linkId": "contact", "answer": [{"valueBoolean": False}]}]) for _ in range(12)]
    client.force_login(cast.clinician_a)
    client.get(f"/patients/{cast.patient_a.pk}/")
    for r in responses:  # the 11th and 12th are in the timeline only, beyond the ten latest
        assert AuditEvent.objects.filter(resource=f"QuestionnaireResponse/{r.pk} (patient page)",
                                         patient_ref=cast.patient_a.pk, user=cast.clinician_a).exists()


def test_the_api_refuses_a_snooze_made_from_a_contact_me_alert_naming_the_alert_and_resolves_nothing(cast, client):
    contact = _contact_me(cast, cast.patient_a)
    client.force_login(cast.clinician_a)
    response = client.post("/api/v1/snoozes", {
        "patient": str(cast.patient_a.pk), "measure": "spo2", "low": "88", "high": "91", "alert": contact.pk,
        "resolve": True, "until": (timezone.now() + timedelta(days=3)).isoformat(), "reason": "COPD"},
        content_type="application/json")
    assert response.status_code == 400 and "alert" in response.json(), response.json()
    assert not Snooze.objects.exists()
    assert Alert.objects.get(pk=contact.pk).status == Status.OPEN
