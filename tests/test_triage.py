"""Triage: the worklist, the patient page's alert block, the lifecycle of an alert (acknowledge,
assign, resolve, bulk-acknowledge, snooze), per-patient limits, and the patient seeing that their
answers have been seen. Services, pages and the REST API, each with bad input."""

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Role
from alerts import lifecycle
from alerts.consumers import AlertConsumer
from alerts.evaluation.responses import response_evaluate
from alerts.lifecycle import AlertConflict, SnoozeEnded
from alerts.live import team_group
from alerts.models import Alert, AlertEvent, EventKind, Outcome, Rule, RuleOverride, Severity, Snooze, Status
from alerts.selectors import alert_payload, alerts_for, worklist
from audit.models import Action, AuditEvent
from audit.models import Outcome as AuditOutcome
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from questionnaires.review import responses_reviewed_at
from tests.factories import evaluate, make_user

pytestmark = pytest.mark.django_db


def _reading(patient, value, minutes_ago=5):
    return Reading.objects.create(patient=patient, measure="spo2", value=Decimal(value), unit="%",
                                  effective_at=timezone.now() - timedelta(minutes=minutes_ago),
                                  source=Source.DEVICE)


def _red(patient, value="88"):
    reading = _reading(patient, value)
    evaluate([reading.pk])
    return Alert.objects.get(patient=patient, rule__kind="threshold", status__in=["open", "acknowledged"])


def _response(cast, patient, contact="true"):
    items = [{"linkId": "contact", "text": "Vil du gerne kontaktes af os?",
              "answer": [{"valueBoolean": contact == "true"}]}]
    return QuestionnaireResponse.objects.create(patient=patient, questionnaire=cast.questionnaire, items=items,
                                                author=patient.user)


def _yellow(cast, patient):
    response = _response(cast, patient)
    response_evaluate(response_id=response.pk)
    return Alert.objects.get(patient=patient, rule__kind="answer", status__in=["open", "acknowledged"])


def _english(client):
    """Pages in English, whatever the Danish catalogue says (the coordinator regenerates it)."""
    client.cookies["django_language"] = "en"


@pytest.fixture
def colleague(cast):
    user = make_user("clinician-a2", Role.CLINICIAN, first_name="Anna", last_name="Andersen")
    cast.team_a.members.add(user)
    return user


# --- lifecycle services ----------------------------------------------------------------------

def test_resolving_an_open_alert_records_acknowledged_and_resolved_events_and_pushes_after_commit(
        cast, django_capture_on_commit_callbacks):
    alert = _red(cast.patient_a)
    with django_capture_on_commit_callbacks() as callbacks:
        lifecycle.alert_resolve(alert=alert, outcome=Outcome.CALLED_PATIENT, note="Called, feels fine",
                                user=cast.clinician_a)
    assert len(callbacks) == 1
    alert.refresh_from_db()
    assert (alert.status, alert.outcome, alert.resolution_note) == (Status.RESOLVED, "called-patient",
                                                                     "Called, feels fine")
    assert alert.acknowledged_by == alert.resolved_by == cast.clinician_a
    kinds = list(alert.events.order_by("pk").values_list("kind", flat=True))
    assert kinds == [EventKind.RAISED, EventKind.ACKNOWLEDGED, EventKind.RESOLVED]
    assert alert.events.get(kind=EventKind.RESOLVED).data == {"outcome": "called-patient"}
    assert AuditEvent.objects.filter(resource=f"Alert/{alert.pk} resolve (called-patient)",
                                     patient_ref=cast.patient_a.pk).exists()


def test_resolving_an_acknowledged_alert_keeps_who_acknowledged_it(cast, colleague):
    alert = _red(cast.patient_a)
    lifecycle.alert_acknowledge(alert=alert, user=colleague)
    lifecycle.alert_resolve(alert=alert, outcome=Outcome.BOOKED_VISIT, note="", user=cast.clinician_a)
    alert.refresh_from_db()
    assert alert.acknowledged_by == colleague and alert.resolved_by == cast.clinician_a
    assert alert.events.filter(kind=EventKind.ACKNOWLEDGED).count() == 1


def test_resolving_with_an_unknown_outcome_is_refused_and_nothing_changes(cast):
    alert = _red(cast.patient_a)
    with pytest.raises(ValidationError) as exc:
        lifecycle.alert_resolve(alert=alert, outcome="prayed", note="", user=cast.clinician_a)
    assert "outcome" in exc.value.message_dict
    alert.refresh_from_db()
    assert alert.status == Status.OPEN and alert.events.count() == 1


def test_no_action_needed_requires_a_note(cast):
    alert = _red(cast.patient_a)
    with pytest.raises(ValidationError) as exc:
        lifecycle.alert_resolve(alert=alert, outcome=Outcome.NO_ACTION, note="   ", user=cast.clinician_a)
    assert "note" in exc.value.message_dict
    lifecycle.alert_resolve(alert=alert, outcome=Outcome.NO_ACTION, note="Known COPD", user=cast.clinician_a)
    assert Alert.objects.get().status == Status.RESOLVED


def test_resolving_twice_is_a_conflict_naming_who_was_first(cast, colleague):
    alert = _red(cast.patient_a)
    first = Alert.objects.get(pk=alert.pk)
    second = Alert.objects.get(pk=alert.pk)  # the other nurse's stale copy
    lifecycle.alert_resolve(alert=first, outcome=Outcome.REFERRED, note="", user=colleague)
    with pytest.raises(AlertConflict) as exc:
        lifecycle.alert_resolve(alert=second, outcome=Outcome.CALLED_PATIENT, note="", user=cast.clinician_a)
    assert "Anna Andersen" in exc.value.message
    alert.refresh_from_db()
    assert alert.outcome == Outcome.REFERRED and alert.resolved_by == colleague
    assert alert.events.filter(kind=EventKind.RESOLVED).count() == 1


def test_assigning_to_a_colleague_on_the_patients_team_records_an_event(cast, colleague):
    alert = _red(cast.patient_a)
    lifecycle.alert_assign(alert=alert, assignee=colleague, user=cast.clinician_a, note="Your patient")
    alert.refresh_from_db()
    assert alert.assigned_to == colleague
    event = alert.events.get(kind=EventKind.ASSIGNED)
    assert (event.by, event.note, event.data) == (cast.clinician_a, "Your patient", {"assignee": colleague.pk})


def test_assigning_to_a_clinician_outside_the_patients_teams_is_a_field_error(cast):
    alert = _red(cast.patient_a)
    for outsider in (cast.clinician_b, cast.admin, cast.patient_a.user):
        with pytest.raises(ValidationError) as exc:
            lifecycle.alert_assign(alert=alert, assignee=outsider, user=cast.clinician_a)
        assert "assignee" in exc.value.message_dict
    alert.refresh_from_db()
    assert alert.assigned_to is None and not alert.events.filter(kind=EventKind.ASSIGNED).exists()


def test_a_simultaneous_reassignment_is_a_conflict_not_a_silent_overwrite(cast, colleague):
    alert = _red(cast.patient_a)
    lifecycle.alert_assign(alert=alert, assignee=colleague, user=colleague, expected_assignee_id=None)
    with pytest.raises(AlertConflict, match="Anna Andersen"):
        lifecycle.alert_assign(alert=alert, assignee=cast.clinician_a, user=cast.clinician_a,
                               expected_assignee_id=None)
    assert Alert.objects.get().assigned_to == colleague


def test_assigning_a_resolved_alert_is_a_conflict(cast, colleague):
    alert = _red(cast.patient_a)
    lifecycle.alert_resolve(alert=alert, outcome=Outcome.REFERRED, note="", user=cast.clinician_a)
    with pytest.raises(AlertConflict):
        lifecycle.alert_assign(alert=alert, assignee=colleague, user=cast.clinician_a)


def test_bulk_acknowledge_takes_yellow_alerts_and_refuses_red_ones_each_with_a_reason(cast):
    red = _red(cast.patient_a)
    yellow = _yellow(cast, cast.patient_a)
    foreign = _yellow(cast, cast.patient_b)
    results = lifecycle.alerts_acknowledge_bulk(alert_ids=[red.pk, yellow.pk, foreign.pk, 999999],
                                                scope=alerts_for(cast.clinician_a), user=cast.clinician_a)
    by_id = {r.id: r for r in results}
    assert by_id[yellow.pk].acknowledged
    assert not by_id[red.pk].acknowledged and by_id[red.pk].reason
    assert not by_id[foreign.pk].acknowledged and by_id[foreign.pk].alert is None
    assert not by_id[999999].acknowledged
    assert Alert.objects.get(pk=yellow.pk).status == Status.ACKNOWLEDGED
    assert Alert.objects.get(pk=red.pk).status == Status.OPEN
    assert Alert.objects.get(pk=foreign.pk).status == Status.OPEN
    assert AlertEvent.objects.get(kind=EventKind.ACKNOWLEDGED).data == {"bulk": True}


def test_bulk_acknowledge_with_no_ids_is_refused(cast):
    with pytest.raises(ValidationError) as exc:
        lifecycle.alerts_acknowledge_bulk(alert_ids=[], scope=alerts_for(cast.clinician_a), user=cast.clinician_a)
    assert "ids" in exc.value.message_dict


def _snooze(cast, **overrides):
    args = {"patient": cast.patient_a, "measure": "spo2", "component": "value", "low": "88", "high": "91",
            "until": timezone.now() + timedelta(days=7), "reason": "COPD, usually 89-91 %", "user": cast.clinician_a}
    return lifecycle.snooze_create(**{**args, **overrides})


def test_a_snooze_drops_findings_inside_its_range_but_the_rule_still_fires_beyond_it(cast):
    snooze = _snooze(cast)
    assert AuditEvent.objects.filter(resource=f"Snooze/{snooze.pk} spo2", action=Action.CREATE).exists()
    evaluate([_reading(cast.patient_a, "90").pk])
    assert not Alert.objects.exists()
    evaluate([_reading(cast.patient_a, "85").pk])
    assert Alert.objects.get().evidence["value"] == "85"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"until": timezone.now() - timedelta(minutes=1)}, "until"),
    ({"until": timezone.now() + timedelta(days=31)}, "until"),
    ({"low": "92", "high": "88"}, "high"),
    ({"low": None, "high": None}, "low"),
    ({"low": "abc"}, "low"),
    ({"reason": "  "}, "reason"),
    ({"measure": "mood"}, "measure"),
    ({"component": "value2"}, "component"),
])
def test_bad_snoozes_are_refused_with_the_field_named_and_nothing_stored(cast, overrides, field):
    with pytest.raises(ValidationError) as exc:
        _snooze(cast, **overrides)
    assert field in exc.value.message_dict
    assert not Snooze.objects.exists()


def test_a_snooze_from_an_alert_records_snoozed_and_can_resolve_it_as_no_action(cast):
    alert = _red(cast.patient_a, "90")
    snooze = _snooze(cast, alert=alert, resolve=True)
    alert.refresh_from_db()
    assert alert.status == Status.RESOLVED and alert.outcome == Outcome.NO_ACTION
    assert "COPD" in alert.resolution_note
    snoozed = alert.events.get(kind=EventKind.SNOOZED)
    assert snoozed.data["snooze"] == snooze.pk and snoozed.data["low"] == "88"
    assert list(alert.events.order_by("pk").values_list("kind", flat=True))[-1] == EventKind.RESOLVED


def test_a_snooze_from_an_alert_of_another_patient_is_refused(cast):
    alert = _red(cast.patient_b)
    with pytest.raises(ValidationError) as exc:
        _snooze(cast, alert=alert)
    assert "alert" in exc.value.message_dict


def test_a_snooze_from_an_already_resolved_alert_with_resolve_leaves_no_snooze(cast):
    alert = _red(cast.patient_a)
    lifecycle.alert_resolve(alert=alert, outcome=Outcome.REFERRED, note="", user=cast.clinician_a)
    with pytest.raises(AlertConflict):
        _snooze(cast, alert=Alert.objects.get(pk=alert.pk), resolve=True)
    assert not Snooze.objects.exists()


def test_ending_a_snooze_early_makes_the_rule_alert_again_and_ending_twice_is_refused(cast):
    snooze = _snooze(cast)
    lifecycle.snooze_end(snooze=snooze, user=cast.clinician_a)
    with pytest.raises(SnoozeEnded):
        lifecycle.snooze_end(snooze=snooze, user=cast.clinician_a)
    evaluate([_reading(cast.patient_a, "90").pk])
    assert Alert.objects.count() == 1


# --- the worklist page -----------------------------------------------------------------------

def _rows(html: str) -> list[str]:
    return re.findall(r'<li class="alert (\w+) (\w+)" data-id="(\d+)"', html)


def test_worklist_lists_open_red_then_yellow_then_acknowledged_oldest_first(cast, client):
    yellow = _yellow(cast, cast.patient_a)
    red = _red(cast.patient_a)
    Alert.objects.filter(pk=yellow.pk).update(raised_at=timezone.now() - timedelta(hours=3))
    rule2 = Rule.objects.create(program=cast.program_a, kind="threshold", name="SpO2 below 95", severity="red",
                                params={"measure": "spo2", "low": 95})
    older_red = Alert.objects.create(patient=cast.patient_a, rule=rule2, rule_version=1, severity="red",
                                     reason="older", evidence={}, source_key="x:1",
                                     raised_at=timezone.now() - timedelta(hours=5))
    lifecycle.alert_acknowledge(alert=older_red, user=cast.clinician_a)
    client.force_login(cast.clinician_a)
    html = client.get("/triage/").content.decode()
    assert [int(r[2]) for r in _rows(html)] == [red.pk, yellow.pk, older_red.pk]
    assert [a.pk for a in worklist(cast.clinician_a)] == [red.pk, yellow.pk, older_red.pk]


def test_worklist_row_says_severity_in_words_findings_assignee_and_links_to_the_alert(cast, client, colleague):
    alert = _red(cast.patient_a)
    evaluate([_reading(cast.patient_a, "87").pk])
    lifecycle.alert_assign(alert=alert, assignee=colleague, user=cast.clinician_a)
    client.force_login(cast.clinician_a)
    _english(client)
    html = client.get("/triage/").content.decode()
    row = html[html.index(f'data-id="{alert.pk}"'):]
    row = row[:row.index("</li>")]
    assert '<span class="badge red">' in row
    assert f'href="/patients/{cast.patient_a.pk}/#alert-{alert.pk}"' in row
    assert re.search(r'class="findings">\s*2\b', row)
    assert "Anna Andersen" in row
    # The patient is named once, on their row (one row per patient).
    patient_row = html[html.index(f'data-patient="{cast.patient_a.pk}"'):]
    assert cast.patient_a.name in patient_row[:patient_row.index("</tr>")]


def _patient_rows(html: str) -> list[tuple[str, str, str]]:
    return re.findall(r'<tr class="patient (\w+) (\w+)" data-patient="([0-9a-f-]{36})"', html)


def test_worklist_is_one_row_per_patient_with_the_worst_severity_the_count_and_every_reason(cast, client):
    from tests.factories import make_patient

    yellow_a, red_a = _yellow(cast, cast.patient_a), _red(cast.patient_a)
    other = make_patient("patient-c", "030350-3333", cast.team_a, cast.program_a, given_name="Carl")
    yellow_c = _yellow(cast, other)
    Alert.objects.filter(pk=yellow_c.pk).update(raised_at=timezone.now() - timedelta(days=1))
    client.force_login(cast.clinician_a)
    _english(client)
    html = client.get("/triage/").content.decode()
    # Alma's open red puts her first although Carl's yellow has waited longer.
    assert _patient_rows(html) == [("red", "open", str(cast.patient_a.pk)), ("yellow", "open", str(other.pk))]
    row = html[html.index(f'data-patient="{cast.patient_a.pk}"'):]
    row = row[:row.index("</tr>")]
    assert '<td class="cpr">010150-1111</td>' in row and "Lung follow-up" in row
    today = timezone.localdate()
    assert f'data-label="Age">{today.year - 1950 - ((today.month, today.day) < (5, 17))}</td>' in row
    assert re.search(r'<td class="num count"[^>]*>2</td>', row)
    assert [int(r[2]) for r in _rows(row)] == [red_a.pk, yellow_a.pk]
    assert red_a.reason in row and yellow_a.reason in row
    # The page lists each patient once, and audits each one shown as a read of their record.
    assert html.count(f'href="/patients/{cast.patient_a.pk}/"') == 1
    assert set(AuditEvent.objects.filter(resource="Alert?worklist (page)", action=Action.READ)
               .values_list("patient_ref", flat=True)) == {cast.patient_a.pk, other.pk}


def test_a_red_alert_cannot_be_ticked_for_bulk_acknowledgement_and_the_page_asks_before_it_stops_escalation(
        cast, client):
    red = _red(cast.patient_a)
    client.force_login(cast.clinician_a)
    _english(client)
    html = client.get("/triage/").content.decode()
    item = html[html.index(f'data-id="{red.pk}"'):]
    assert 'name="ids"' not in item[:item.index("</li>")]
    dialog = html[html.index('<dialog id="confirm-red"'):html.index("</dialog>")]
    assert "stops the escalation" in dialog and 'value="confirm"' in dialog and 'value="cancel"' in dialog


def test_the_alert_payload_names_the_patients_cpr_number_age_and_the_programme(cast, client):
    alert = _red(cast.patient_a)
    client.force_login(cast.clinician_a)
    payload = client.get("/api/v1/alerts").json()[0]
    assert payload["id"] == alert.pk and payload["patient"]["cpr"] == "010150-1111"
    assert isinstance(payload["patient"]["age"], int) and payload["program"] == "Lung follow-up"


def test_worklist_shows_new_evidence_since_acknowledged(cast, client):
    alert = _red(cast.patient_a, "90")
    lifecycle.alert_acknowledge(alert=alert, user=cast.clinician_a)
    client.force_login(cast.clinician_a)
    assert "new-evidence" not in client.get("/triage/").content.decode()
    evaluate([_reading(cast.patient_a, "89").pk])
    assert Alert.objects.get().status == Status.ACKNOWLEDGED
    assert 'class="new-evidence"' in client.get("/triage/").content.decode()
    payload = client.get("/api/v1/alerts").json()[0]
    assert payload["new_evidence"] is True and payload["finding_count"] == 2


def test_worklist_filters_by_severity_team_programme_and_assigned_to_me(cast, client, colleague):
    red, yellow = _red(cast.patient_a), _yellow(cast, cast.patient_a)
    red_b = _red(cast.patient_b)
    client.force_login(cast.admin)  # sees both teams

    def ids(query: str) -> set[int]:
        return {int(r[2]) for r in _rows(client.get(f"/triage/{query}").content.decode())}

    assert ids("") == {red.pk, yellow.pk, red_b.pk}
    assert ids("?severity=red") == {red.pk, red_b.pk}
    assert ids(f"?team={cast.team_b.pk}") == {red_b.pk}
    assert ids(f"?program={cast.program_a.pk}") == {red.pk, yellow.pk}
    assert ids(f"?program={cast.program_a.pk}&severity=yellow") == {yellow.pk}
    assert ids("?mine=1") == set()
    lifecycle.alert_assign(alert=yellow, assignee=colleague, user=cast.admin)
    client.force_login(colleague)
    assert ids("?mine=1") == {yellow.pk}
    # Values the user cannot choose are ignored, never an error nor a way into another team.
    assert ids(f"?team={cast.team_b.pk}&severity=purple&program=abc") == {red.pk, yellow.pk}


def test_worklist_of_another_team_shows_none_of_these_alerts(cast, client):
    _red(cast.patient_a)
    client.force_login(cast.clinician_b)
    html = client.get("/triage/").content.decode()
    assert _rows(html) == [] and cast.patient_a.name not in html


def test_bulk_acknowledge_page_acknowledges_yellow_and_explains_refused_red(cast, client):
    red, yellow = _red(cast.patient_a), _yellow(cast, cast.patient_a)
    client.force_login(cast.clinician_a)
    response = client.post("/triage/acknowledge/", {"ids": [yellow.pk, red.pk], "severity": "yellow",
                                                    "next": "https://evil.example"})
    assert response.status_code == 302 and response["Location"] == "/triage/?severity=yellow"
    assert Alert.objects.get(pk=yellow.pk).status == Status.ACKNOWLEDGED
    assert Alert.objects.get(pk=red.pk).status == Status.OPEN
    page = client.get(response["Location"]).content.decode()
    assert cast.patient_a.name in page and "message error" in page


async def _feed(user: Any, path: str = "/ws/alerts/") -> tuple[WebsocketCommunicator, dict]:
    """A triage page's socket, connected as ``user``, and the snapshot it got first."""
    communicator = WebsocketCommunicator(AlertConsumer.as_asgi(), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from(timeout=5)


async def _push(team: Any, payloads: list[dict]) -> None:
    """What alerts.live.alerts_broadcast sends a team's pages."""
    await get_channel_layer().group_send(team_group(team.pk), {"type": "alerts.changed", "alerts": payloads})


def test_the_socket_applies_the_pages_filter_to_the_snapshot_and_to_pushes(cast):
    red, yellow = _red(cast.patient_a), _yellow(cast, cast.patient_a)
    payloads = [alert_payload(a) for a in (red, yellow)]

    async def scenario() -> list[dict]:
        communicator, snapshot = await _feed(cast.clinician_a, "/ws/alerts/?severity=yellow")
        received = [snapshot]
        for payload in payloads:  # what alerts.live.alert_broadcast sends the team
            await _push(cast.team_a, [payload])
            received.append(await communicator.receive_json_from(timeout=5))
        await communicator.disconnect()
        return received

    snapshot, pushed_red, pushed_yellow = async_to_sync(scenario)()
    assert [a["id"] for a in snapshot["alerts"]] == [yellow.pk]
    assert pushed_red == {"type": "removed", "id": red.pk}
    assert pushed_yellow["type"] == "alert" and pushed_yellow["alert"]["id"] == yellow.pk
    # (The consumer's database calls close the test's SQLite connection on the way out, so the
    # audit of pushes is checked end-to-end in tests/e2e/, not here.)


@pytest.mark.django_db(transaction=True)  # the consumer's database calls close connections
def test_the_sockets_snapshot_names_cpr_and_age_and_audits_each_patient_it_shows_as_a_read(cast):
    _red(cast.patient_a), _yellow(cast, cast.patient_a)
    _red(cast.patient_b)

    async def scenario() -> dict:
        communicator, snapshot = await _feed(cast.clinician_a)
        await communicator.disconnect()
        return snapshot

    snapshot = async_to_sync(scenario)()
    assert {a["patient"]["cpr"] for a in snapshot["alerts"]} == {"010150-1111"}
    reads = list(AuditEvent.objects.filter(resource="Alert?worklist (websocket)", action=Action.READ)
                 .values_list("patient_ref", flat=True))
    assert reads == [cast.patient_a.pk]  # once per patient, however many alerts; never team B's


@pytest.mark.django_db(transaction=True)  # the consumer's database calls close connections
def test_a_burst_of_pushes_reaches_the_socket_complete_in_order_and_filtered(cast):
    """Pushes that arrive while the consumer is still auditing earlier ones are sent together
    afterwards: none lost, none reordered, each checked against the page's filter."""
    red, yellow = _red(cast.patient_a), _yellow(cast, cast.patient_a)
    r, y = alert_payload(red), alert_payload(yellow)
    burst = [[r, y], [r], [y, y]]  # a broadcast carries every changed alert of the team

    async def scenario() -> list[dict]:
        communicator, _snapshot = await _feed(cast.clinician_a, "/ws/alerts/?severity=yellow")
        for payloads in burst:  # all sent before the first is answered
            await _push(cast.team_a, payloads)
        received = [await communicator.receive_json_from(timeout=5) for _ in range(5)]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return received

    received = async_to_sync(scenario)()
    assert [(m["type"], m.get("id") or m["alert"]["id"]) for m in received] == [
        ("removed", red.pk), ("alert", yellow.pk), ("removed", red.pk), ("alert", yellow.pk), ("alert", yellow.pk)]
    # Each push shown is a read by this clinician; the ones the filter hid are not.
    pushes = AuditEvent.objects.filter(user=cast.clinician_a, action=Action.READ, resource__endswith="(live push)")
    assert sorted(pushes.values_list("resource", flat=True)) == [f"Alert/{yellow.pk} (live push)"] * 3
    assert {e.patient_ref for e in pushes} == {cast.patient_a.pk}


@pytest.mark.django_db(transaction=True)  # the consumer's database calls close connections
def test_a_push_that_cannot_be_audited_is_not_shown_and_the_socket_closes_so_the_page_reloads(cast):
    from unittest import mock

    payload = alert_payload(_red(cast.patient_a))

    async def scenario() -> dict:
        communicator, _snapshot = await _feed(cast.clinician_a)
        with mock.patch("alerts.consumers.audit_record_many", side_effect=RuntimeError("database down")):
            await _push(cast.team_a, [payload])
            return await communicator.receive_output(timeout=5)

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 1011}
    assert not AuditEvent.objects.filter(resource__endswith="(live push)").exists()


# --- the patient page ------------------------------------------------------------------------

def test_patient_page_shows_the_alert_with_its_findings_and_rings_its_readings_on_the_chart(cast, client):
    alert = _red(cast.patient_a)
    client.force_login(cast.clinician_a)
    _english(client)
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert f'id="alert-{alert.pk}"' in html
    assert html.index(f'id="alert-{alert.pk}"') < html.index('id="timeline-heading"')
    assert alert.reason in html
    assert "<svg" in html and "Behind the alert" in html
    assert 'stroke: #1a1a1a' in html  # the ring is drawn on the circle itself
    assert 'id="devices-heading"' in html  # the devices section stays


def test_patient_page_shows_the_answers_behind_a_response_alert(cast, client):
    alert = _yellow(cast, cast.patient_a)
    client.force_login(cast.clinician_a)
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    block = html[html.index(f'id="alert-{alert.pk}"'):]
    block = block[:block.index("</article>")]
    assert "answers-behind" in block and "Vil du gerne kontaktes af os?" in block


def test_patient_page_of_another_team_is_404(cast, client):
    _red(cast.patient_b)
    client.force_login(cast.clinician_a)
    assert client.get(f"/patients/{cast.patient_b.pk}/").status_code == 404


def test_resolve_form_shows_errors_next_to_the_field_and_stores_nothing(cast, client):
    alert = _red(cast.patient_a)
    client.force_login(cast.clinician_a)
    url = f"/patients/{cast.patient_a.pk}/alerts/{alert.pk}/resolve/"
    response = client.post(url, {f"resolve-{alert.pk}-outcome": "no-action", f"resolve-{alert.pk}-note": ""})
    assert response.status_code == 400
    html = response.content.decode()
    note_field = html[html.index(f'for="id_resolve-{alert.pk}-note"'):]
    assert note_field.index('class="errors"') < note_field.index(f'id="id_resolve-{alert.pk}-note"')
    assert Alert.objects.get().status == Status.OPEN
    response = client.post(url, {f"resolve-{alert.pk}-outcome": "bogus"})
    assert response.status_code == 400 and 'class="errors"' in response.content.decode()
    response = client.post(url, {f"resolve-{alert.pk}-outcome": "called-patient", f"resolve-{alert.pk}-note": ""})
    assert response.status_code == 302
    assert Alert.objects.get().status == Status.RESOLVED


def test_resolving_twice_on_the_page_says_who_was_first(cast, client, colleague):
    alert = _red(cast.patient_a)
    lifecycle.alert_resolve(alert=alert, outcome=Outcome.REFERRED, note="", user=colleague)
    client.force_login(cast.clinician_a)
    response = client.post(f"/patients/{cast.patient_a.pk}/alerts/{alert.pk}/resolve/",
                           {f"resolve-{alert.pk}-outcome": "called-patient"}, follow=True)
    assert "Anna Andersen" in response.content.decode()
    assert Alert.objects.get().resolved_by == colleague


def test_assign_form_refuses_a_clinician_of_another_team(cast, client):
    alert = _red(cast.patient_a)
    client.force_login(cast.clinician_a)
    response = client.post(f"/patients/{cast.patient_a.pk}/alerts/{alert.pk}/assign/",
                           {f"assign-{alert.pk}-assignee": cast.clinician_b.pk, f"assign-{alert.pk}-current": ""})
    assert response.status_code == 400 and 'class="errors"' in response.content.decode()
    assert Alert.objects.get().assigned_to is None


def test_page_actions_on_another_teams_alert_are_404_and_audited_as_denied(cast, client):
    alert = _red(cast.patient_b)
    client.force_login(cast.clinician_a)
    for action, data in (("acknowledge", {}), ("resolve", {f"resolve-{alert.pk}-outcome": "referred"})):
        assert client.post(f"/patients/{cast.patient_b.pk}/alerts/{alert.pk}/{action}/", data).status_code == 404
        # and through the right patient's URL with the wrong alert
        assert client.post(f"/patients/{cast.patient_a.pk}/alerts/{alert.pk}/{action}/", data).status_code == 404
    assert Alert.objects.get().status == Status.OPEN
    assert AuditEvent.objects.filter(user=cast.clinician_a, outcome=AuditOutcome.DENIED).exists()


def test_snooze_form_from_an_alert_snoozes_and_resolves(cast, client):
    alert = _red(cast.patient_a, "90")
    client.force_login(cast.clinician_a)
    p = f"snooze-{alert.pk}-"
    until = (timezone.localtime() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    bad = client.post(f"/patients/{cast.patient_a.pk}/alerts/{alert.pk}/snooze/", {
        p + "measure": "spo2", p + "component": "value", p + "low": "92", p + "high": "88", p + "until": until,
        p + "reason": "COPD", p + "resolve": "on"})
    assert bad.status_code == 400 and not Snooze.objects.exists()
    ok = client.post(f"/patients/{cast.patient_a.pk}/alerts/{alert.pk}/snooze/", {
        p + "measure": "spo2", p + "component": "value", p + "low": "88", p + "high": "91", p + "until": until,
        p + "reason": "COPD", p + "resolve": "on"})
    assert ok.status_code == 302
    snooze = Snooze.objects.get()
    assert (snooze.low, snooze.high) == (Decimal("88"), Decimal("91"))
    assert Alert.objects.get().status == Status.RESOLVED
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert f"/snoozes/{snooze.pk}/end/" in html
    assert client.post(f"/patients/{cast.patient_a.pk}/snoozes/{snooze.pk}/end/").status_code == 302
    assert Snooze.objects.get().ended_at is not None


def test_clinician_overrides_a_rules_limit_for_one_patient_sees_the_history_and_reverts(cast, client):
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    client.force_login(cast.clinician_a)
    url = f"/patients/{cast.patient_a.pk}/rules/{rule.pk}/override/"
    p = f"override-{rule.pk}-"
    missing_reason = client.post(url, {p + "p_low": "90", p + "p_high": "", p + "reason": ""})
    assert missing_reason.status_code == 400 and not RuleOverride.objects.exists()
    unchanged = client.post(url, {p + "p_low": "92", p + "p_high": "", p + "reason": "why"})
    assert unchanged.status_code == 400 and not RuleOverride.objects.exists()
    nonsense = client.post(url, {p + "p_low": "", p + "p_high": "", p + "reason": "no limits"})
    assert nonsense.status_code == 400 and not RuleOverride.objects.exists()  # neither low nor high
    # A typo beyond what SpO2 can be would switch the alert off (or on for good): refused, said why.
    typo = client.post(url, {p + "p_low": "920", p + "p_high": "", p + "reason": "typo"}, HTTP_ACCEPT_LANGUAGE="en")
    assert typo.status_code == 400 and not RuleOverride.objects.exists()
    assert "920 % is outside the possible range of Oxygen saturation (SpO2) (50 to 100)." in typo.content.decode()
    assert client.post(url, {p + "p_low": "89", p + "p_high": "", p + "reason": "COPD"}).status_code == 302
    override = RuleOverride.objects.get(ended_at=None)
    assert override.params == {"low": 89} and override.created_by == cast.clinician_a
    evaluate([_reading(cast.patient_a, "90").pk])
    assert not Alert.objects.exists()  # 90 is fine for this patient now
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert "COPD" in html and f"/rules/{rule.pk}/revert/" in html
    revert = f"/patients/{cast.patient_a.pk}/rules/{rule.pk}/revert/"
    assert client.post(revert, {f"revert-{rule.pk}-reason": ""}).status_code == 400
    assert client.post(revert, {f"revert-{rule.pk}-reason": "Stable again"}).status_code == 302
    assert not RuleOverride.objects.filter(ended_at=None).exists()
    assert RuleOverride.objects.get().ended_by == cast.clinician_a


def test_override_of_a_rule_outside_the_patients_programmes_is_404(cast, client):
    rule_b = Rule.objects.get(program=cast.program_b, kind="threshold")
    client.force_login(cast.clinician_a)
    response = client.post(f"/patients/{cast.patient_a.pk}/rules/{rule_b.pk}/override/",
                           {f"override-{rule_b.pk}-p_low": "80", f"override-{rule_b.pk}-reason": "x"})
    assert response.status_code == 404 and not RuleOverride.objects.exists()


# --- "seen by your care team" ----------------------------------------------------------------
# Only a nurse's "Markér som gennemset" (a ResponseReview) makes answers "seen"; opening the
# patient page or handling an alert does not (issue 19; tests/test_review_queue.py has the rest).

def test_answers_are_not_seen_when_a_clinician_only_opens_the_patient_page(cast, client):
    response = _response(cast, cast.patient_a, contact="false")
    client.force_login(cast.clinician_a)
    page = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert f'<details id="response-{response.pk}" open>' in page  # not reviewed: shown opened
    assert AuditEvent.objects.filter(resource=f"QuestionnaireResponse/{response.pk} (patient page)",
                                     patient_ref=cast.patient_a.pk).exists()  # the read is audited
    assert responses_reviewed_at(cast.patient_a.pk, [response.pk]) == {}
    client.force_login(cast.patient_a.user)
    _english(client)
    assert "Not seen yet" in client.get("/me/answers/").content.decode()


def test_acknowledging_an_alert_on_answers_does_not_mark_them_seen(cast):
    response = _response(cast, cast.patient_a)
    response_evaluate(response_id=response.pk)
    lifecycle.alert_resolve(alert=Alert.objects.get(), outcome=Outcome.CALLED_PATIENT, note="",
                            user=cast.clinician_a)
    assert responses_reviewed_at(cast.patient_a.pk, [response.pk]) == {}


# --- the REST API ----------------------------------------------------------------------------

def test_api_assign_resolve_and_their_bad_input(cast, client, colleague):
    alert = _red(cast.patient_a)
    client.force_login(cast.clinician_a)
    base = f"/api/v1/alerts/{alert.pk}"
    outsider = client.post(f"{base}/assign", {"assignee": cast.clinician_b.pk}, content_type="application/json")
    assert outsider.status_code == 400 and "assignee" in outsider.json()
    unknown_user = client.post(f"{base}/assign", {"assignee": 424242}, content_type="application/json")
    assert unknown_user.status_code == 400 and "assignee" in unknown_user.json()
    ok = client.post(f"{base}/assign", {"assignee": colleague.pk, "current_assignee": None},
                     content_type="application/json")
    assert ok.status_code == 200 and ok.json()["assigned_to"]["id"] == colleague.pk
    stale = client.post(f"{base}/assign", {"assignee": cast.clinician_a.pk, "current_assignee": None},
                        content_type="application/json")
    assert stale.status_code == 409 and "Anna Andersen" in stale.json()["detail"]

    bad = client.post(f"{base}/resolve", {"outcome": "prayed"}, content_type="application/json")
    assert bad.status_code == 400 and "outcome" in bad.json()
    no_note = client.post(f"{base}/resolve", {"outcome": "no-action"}, content_type="application/json")
    assert no_note.status_code == 400 and "note" in no_note.json()
    done = client.post(f"{base}/resolve", {"outcome": "changed-treatment", "note": "Diuretic up"},
                       content_type="application/json")
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert done.json()["outcome"] == "changed-treatment"
    again = client.post(f"{base}/resolve", {"outcome": "referred"}, content_type="application/json")
    assert again.status_code == 409 and again.json()["status"] == "resolved"
    assert Alert.objects.get().outcome == "changed-treatment"


def test_api_on_another_teams_alert_is_404_and_refused_for_patients(cast, client):
    alert = _red(cast.patient_b)
    client.force_login(cast.clinician_a)
    for path, body in ((f"/api/v1/alerts/{alert.pk}/resolve", {"outcome": "referred"}),
                       (f"/api/v1/alerts/{alert.pk}/assign", {"assignee": None})):
        response = client.post(path, body, content_type="application/json")
        assert response.status_code == 404 and "Bodil" not in response.content.decode()
    client.force_login(cast.patient_b.user)
    assert client.post(f"/api/v1/alerts/{alert.pk}/resolve", {"outcome": "referred"},
                       content_type="application/json").status_code == 403
    assert Alert.objects.get().status == Status.OPEN


def test_api_bulk_acknowledge_refuses_red_per_item(cast, client):
    red, yellow = _red(cast.patient_a), _yellow(cast, cast.patient_a)
    client.force_login(cast.clinician_a)
    response = client.post("/api/v1/alerts/acknowledge", {"ids": [red.pk, yellow.pk]},
                           content_type="application/json")
    assert response.status_code == 200
    results = {r["id"]: r for r in response.json()["results"]}
    assert results[yellow.pk]["acknowledged"] and results[yellow.pk]["alert"]["status"] == "acknowledged"
    assert not results[red.pk]["acknowledged"] and results[red.pk]["reason"]
    for body in ({"ids": []}, {"ids": "1"}, {}, {"ids": ["x"]}):
        bad = client.post("/api/v1/alerts/acknowledge", body, content_type="application/json")
        assert bad.status_code == 400 and "ids" in bad.json()


def test_api_snooze_create_end_and_bad_input(cast, client):
    client.force_login(cast.clinician_a)
    body = {"patient": str(cast.patient_a.pk), "measure": "spo2", "low": "88", "high": "91",
            "until": (timezone.now() + timedelta(days=3)).isoformat(), "reason": "COPD"}
    for change, field in (({"until": (timezone.now() - timedelta(hours=1)).isoformat()}, "until"),
                          ({"until": (timezone.now() + timedelta(days=40)).isoformat()}, "until"),
                          ({"low": "95"}, "high"), ({"reason": ""}, "reason"), ({"measure": "nope"}, "measure"),
                          ({"component": "value3"}, "component")):
        bad = client.post("/api/v1/snoozes", {**body, **change}, content_type="application/json")
        assert bad.status_code == 400 and field in bad.json(), (change, bad.json())
    foreign = client.post("/api/v1/snoozes", {**body, "patient": str(cast.patient_b.pk)},
                          content_type="application/json")
    assert foreign.status_code == 404
    assert not Snooze.objects.exists()
    created = client.post("/api/v1/snoozes", body, content_type="application/json")
    assert created.status_code == 201 and created.json()["measure"] == "spo2"
    snooze_id = created.json()["id"]
    assert client.post(f"/api/v1/snoozes/{snooze_id}/end").status_code == 200
    assert client.post(f"/api/v1/snoozes/{snooze_id}/end").status_code == 409
    client.force_login(cast.clinician_b)
    assert client.post(f"/api/v1/snoozes/{snooze_id}/end").status_code == 404


def test_api_snooze_from_an_alert_resolves_it(cast, client):
    alert = _red(cast.patient_a, "90")
    client.force_login(cast.clinician_a)
    response = client.post("/api/v1/snoozes", {
        "patient": str(cast.patient_a.pk), "measure": "spo2", "low": "88", "high": "91", "alert": alert.pk,
        "resolve": True, "until": (timezone.now() + timedelta(days=3)).isoformat(), "reason": "COPD"},
        content_type="application/json")
    assert response.status_code == 201
    assert Alert.objects.get().status == Status.RESOLVED
    other = _red(cast.patient_b)
    wrong = client.post("/api/v1/snoozes", {
        "patient": str(cast.patient_a.pk), "measure": "spo2", "low": "88", "alert": other.pk,
        "until": (timezone.now() + timedelta(days=3)).isoformat(), "reason": "x"}, content_type="application/json")
    assert wrong.status_code == 400 and "alert" in wrong.json()


def test_the_new_endpoints_are_in_the_openapi_schema(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/alerts/{alert_id}/assign", "/api/v1/alerts/{alert_id}/resolve",
                 "/api/v1/alerts/acknowledge", "/api/v1/snoozes", "/api/v1/snoozes/{snooze_id}/end"):
        assert f"{path}:" in text


def test_bulk_acknowledge_refuses_an_id_beyond_any_database_id_per_field(cast, client):
    client.force_login(cast.clinician_a)
    response = client.post("/api/v1/alerts/acknowledge", {"ids": [2**64]}, content_type="application/json")
    assert response.status_code == 400
    assert "ids" in response.json()


def test_the_page_names_the_live_feed_port_only_when_one_is_configured(cast, client, settings):
    client.force_login(cast.clinician_a)
    assert "data-live-port" not in client.get("/triage/").content.decode()  # behind the proxy: /ws/ here
    settings.LIVE_FEED_PORT = "8100"
    assert 'data-live-port="8100"' in client.get("/triage/").content.decode()


@pytest.mark.django_db(transaction=True)  # the consumer's database calls close connections
def test_a_clinician_taken_off_the_team_while_the_page_is_open_gets_no_more_of_its_alerts(cast):
    first, second = _red(cast.patient_a), _yellow(cast, cast.patient_a)
    payloads = [alert_payload(first), alert_payload(second)]

    async def scenario() -> list[dict]:
        communicator, _snapshot = await _feed(cast.clinician_a)
        await _push(cast.team_a, [payloads[0]])
        received = [await communicator.receive_json_from(timeout=5)]
        await database_sync_to_async(cast.team_a.members.remove)(cast.clinician_a)
        await _push(cast.team_a, [payloads[1]])
        received.append(await communicator.receive_json_from(timeout=5))
        await communicator.disconnect()
        return received

    shown, after = async_to_sync(scenario)()
    assert shown["type"] == "alert" and shown["alert"]["id"] == first.pk
    assert after == {"type": "removed", "id": second.pk}  # no name, no reason
    pushes = AuditEvent.objects.filter(user=cast.clinician_a, resource__endswith="(live push)")
    assert list(pushes.values_list("resource", flat=True)) == [f"Alert/{first.pk} (live push)"]


@pytest.mark.django_db(transaction=True)  # the consumer's database calls close connections
def test_a_clinician_deactivated_while_the_page_is_open_gets_no_more_alerts(cast):
    payload = alert_payload(_red(cast.patient_a))

    async def scenario() -> dict:
        communicator, _snapshot = await _feed(cast.clinician_a)
        await database_sync_to_async(
            type(cast.clinician_a).objects.filter(pk=cast.clinician_a.pk).update)(is_active=False)
        await _push(cast.team_a, [payload])
        received = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return received

    assert async_to_sync(scenario)() == {"type": "removed", "id": payload["id"]}
    assert not AuditEvent.objects.filter(resource__endswith="(live push)").exists()


def test_the_patient_page_shows_a_rules_parameters_in_words_not_as_code(cast, client):
    from alerts.definitions import rule_override_set

    threshold = Rule.objects.get(program=cast.program_a, kind="threshold")
    Rule.objects.create(program=cast.program_a, kind="missed", name="Not answering", severity=Severity.YELLOW,
                        params={"questionnaire": cast.questionnaire.url, "grace_hours": 24})
    Rule.objects.create(program=cast.program_a, kind="bands", name="SpO2 bands", severity=Severity.RED,
                        params={"measure": "spo2", "bands": {"alert_low": 85, "warning_low": 92}})
    rule_override_set(rule=threshold, patient=cast.patient_a, params={"low": 89.5}, by=cast.clinician_a,
                      reason="COPD")
    client.force_login(cast.clinician_a)
    section = client.get(f"/patients/{cast.patient_a.pk}/", HTTP_ACCEPT_LANGUAGE="da").content.decode()
    section = section.split('id="rules"', 1)[1].split("</section>", 1)[0]
    assert "Nedre grænse: 92 %" in section and "Nedre grænse: 89,5 %" in section
    assert f"Spørgeskema: {cast.questionnaire.title}" in section and "Timers henstand efter fristen: 24" in section
    assert "Intervaller: alarm under 85 %, advarsel under 92 %" in section
    for code in ("low =", "grace_hours", "alert_low", "http", "'", "{"):
        assert code not in section.split("<form", 1)[0], code
    assert '<label for="id_override-' in section and ">Nedre grænse</label>" in section


def test_rule_parameters_that_are_identifiers_are_shown_as_given():
    from django.utils import translation

    from alerts.params_words import params_in_words

    with translation.override("da"):
        words = dict(params_in_words({"questionnaire": "urn:q", "link_id": "1.2", "codes": ["1.10", "up"]}))
        assert words == {"Spørgeskema": "urn:q", "Spørgsmål": "1.2", "Svar": "1.10; up"}
        assert dict(params_in_words({"measure": "body-temperature", "high": "38.4"}))["Øvre grænse"] == "38,4 °C"
