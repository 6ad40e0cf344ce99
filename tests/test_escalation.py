"""Red alerts nobody acknowledges climb the team's ladder (on-call, then lead), driven by the
periodic job from database state; every notification attempt is a row with its error."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from accounts.models import Role
from alerts.consumers import AlertConsumer
from alerts.escalation import alerts_escalate, care_teams_without_escalation
from alerts.lifecycle import alert_acknowledge
from alerts.models import (
    Alert,
    AlertEvent,
    DeliveryStatus,
    EscalationPolicy,
    EventKind,
    Notification,
    Rule,
    Severity,
    Status,
)
from alerts.tasks_escalation import escalate_alerts
from alerts.transports import TransportError
from alerts.transports import email as email_transport
from alerts.transports.websocket import user_group
from monitoring.models import Reading, Source
from patients.models import TreatmentEpisode
from tests.factories import evaluate, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ladder(cast):
    """Team A escalates after 30 minutes to clinician A (on call), then to its lead."""
    cast.clinician_a.email = "on-call-a@example.org"
    cast.clinician_a.save()
    lead = make_user("lead-a", Role.CLINICIAN, email="lead-a@example.org", first_name="Lene")
    cast.team_a.members.add(lead)
    policy = EscalationPolicy.objects.create(care_team=cast.team_a, after=timedelta(minutes=30),
                                             on_call=cast.clinician_a, lead=lead)
    cast.lead_a = lead
    return policy


def _red_alert(patient, value="88") -> Alert:
    reading = Reading.objects.create(patient=patient, measure="spo2", value=Decimal(value), unit="%",
                                     effective_at=timezone.now() - timedelta(minutes=5), source=Source.DEVICE)
    evaluate([reading.pk])
    return Alert.objects.get(patient=patient)


def _escalations(alert: Alert) -> list[dict]:
    return list(AlertEvent.objects.filter(alert=alert, kind=EventKind.ESCALATED).order_by("id")
                .values_list("data", flat=True))


def _notifications(alert: Alert) -> list[tuple[str, str, str, str]]:
    return list(Notification.objects.filter(alert=alert).order_by("id")
                .values_list("channel", "recipient__username", "reason", "status"))


# --- the ladder -------------------------------------------------------------------------------

def test_a_red_alert_younger_than_the_policy_time_does_not_escalate(cast, ladder):
    alert = _red_alert(cast.patient_a)
    result = alerts_escalate(now=alert.raised_at + timedelta(minutes=29, seconds=59))
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalated_at) == (0, None)
    assert result.steps == 0 and not _escalations(alert) and not Notification.objects.exists()
    assert mail.outbox == []


def test_after_the_policy_time_the_on_call_is_notified_by_websocket_and_email(cast, ladder):
    alert = _red_alert(cast.patient_a)
    now = alert.raised_at + timedelta(minutes=30)
    result = alerts_escalate(now=now)
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalated_at) == (1, now)
    assert _escalations(alert) == [{"level": 1, "recipients": [cast.clinician_a.pk], "teams": [cast.team_a.pk],
                                    "after_minutes": 30}]
    assert _notifications(alert) == [("websocket", "clinician-a", "escalation-1", "sent"),
                                     ("email", "clinician-a", "escalation-1", "sent")]
    assert (result.steps, result.sent, result.failed) == (1, 2, 0)
    assert [m.to for m in mail.outbox] == [["on-call-a@example.org"]]


def test_after_twice_the_policy_time_the_team_lead_is_notified(cast, ladder):
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=30))
    alerts_escalate(now=alert.raised_at + timedelta(minutes=59))  # not yet
    assert Alert.objects.get().escalation_level == 1
    alerts_escalate(now=alert.raised_at + timedelta(minutes=60))
    alert.refresh_from_db()
    assert alert.escalation_level == 2
    assert [e["level"] for e in _escalations(alert)] == [1, 2]
    assert _escalations(alert)[1]["recipients"] == [cast.lead_a.pk]
    assert ("email", "lead-a", "escalation-2", "sent") in _notifications(alert)
    assert [m.to for m in mail.outbox] == [["on-call-a@example.org"], ["lead-a@example.org"]]
    # the top of the ladder: nothing more, however long it waits
    alerts_escalate(now=alert.raised_at + timedelta(days=2))
    assert len(_escalations(alert)) == 2 and len(mail.outbox) == 2


def test_a_job_that_was_down_records_and_notifies_both_steps_at_once(cast, ladder):
    alert = _red_alert(cast.patient_a)
    result = alerts_escalate(now=alert.raised_at + timedelta(hours=3))
    assert Alert.objects.get().escalation_level == 2
    assert [e["level"] for e in _escalations(alert)] == [1, 2]
    assert result.steps == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["lead-a@example.org", "on-call-a@example.org"]


def test_acknowledging_stops_the_ladder(cast, ladder):
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=31))
    alert_acknowledge(alert=alert, user=cast.clinician_a)
    alerts_escalate(now=alert.raised_at + timedelta(hours=5))
    alert.refresh_from_db()
    assert (alert.status, alert.escalation_level) == (Status.ACKNOWLEDGED, 1)
    assert len(_escalations(alert)) == 1
    assert not Notification.objects.filter(reason="escalation-2").exists()


def test_an_alert_acknowledged_in_time_never_escalates(cast, ladder):
    alert = _red_alert(cast.patient_a)
    alert_acknowledge(alert=alert, user=cast.clinician_a)
    alerts_escalate(now=alert.raised_at + timedelta(hours=5))
    assert Alert.objects.get().escalation_level == 0
    assert not _escalations(alert) and mail.outbox == []


def test_a_yellow_alert_never_escalates(cast, ladder):
    rule = Rule.objects.get(program=cast.program_a, severity=Severity.YELLOW)
    alert = Alert.objects.create(patient=cast.patient_a, rule=rule, rule_version=1, severity=Severity.YELLOW,
                                 reason="Asks to be contacted.", evidence={}, source_key="response:1",
                                 raised_at=timezone.now() - timedelta(days=1))
    alerts_escalate(now=timezone.now())
    alert.refresh_from_db()
    assert alert.escalation_level == 0
    assert not _escalations(alert) and not Notification.objects.exists()


def test_the_clock_starts_when_a_yellow_alert_turned_red(cast, ladder):
    rule = Rule.objects.get(program=cast.program_a, severity=Severity.RED, safety_net_for="")
    t0 = timezone.now() - timedelta(hours=4)
    alert = Alert.objects.create(patient=cast.patient_a, rule=rule, rule_version=1, severity=Severity.RED,
                                 reason="worse", evidence={}, source_key="reading:1", raised_at=t0)
    turned_red = t0 + timedelta(hours=3, minutes=45)
    AlertEvent.objects.create(alert=alert, kind=EventKind.EVIDENCE_ADDED, at=turned_red,
                              data={"sources": ["reading:2"], "severity": "red", "from_severity": "yellow"})
    alerts_escalate(now=turned_red + timedelta(minutes=29))
    assert Alert.objects.get().escalation_level == 0
    alerts_escalate(now=turned_red + timedelta(minutes=30))
    assert Alert.objects.get().escalation_level == 1


def test_running_the_job_twice_does_not_escalate_twice(cast, ladder):
    alert = _red_alert(cast.patient_a)
    now = alert.raised_at + timedelta(minutes=45)
    first, second = alerts_escalate(now=now), alerts_escalate(now=now)
    assert (first.steps, second.steps) == (1, 0)
    assert len(_escalations(alert)) == 1
    assert Notification.objects.count() == 2 and len(mail.outbox) == 1


def test_a_run_that_read_the_alert_before_another_run_escalated_it_does_not_escalate_again(
        cast, ladder, monkeypatch):
    # Two beat runs at once: both load the alert at level 0; the conditional UPDATE lets one climb.
    import alerts.escalation as escalation

    alert = _red_alert(cast.patient_a)
    now = alert.raised_at + timedelta(minutes=31)
    real = escalation._policies_by_patient
    raced: list = []

    def other_run_first(patient_ids):
        if not raced:
            raced.append(None)
            raced[0] = alerts_escalate(now=now)  # the other run, between our read and our UPDATE
        return real(patient_ids)

    monkeypatch.setattr(escalation, "_policies_by_patient", other_run_first)
    ours = alerts_escalate(now=now)
    assert raced[0].steps == 1 and ours.steps == 0
    assert len(_escalations(alert)) == 1
    assert Notification.objects.count() == 2 and len(mail.outbox) == 1


# --- several teams, no policy -----------------------------------------------------------------

def test_a_team_without_a_policy_does_not_escalate_and_is_listed(cast, ladder):
    alert = _red_alert(cast.patient_b)  # team B has no policy
    alerts_escalate(now=alert.raised_at + timedelta(days=1))
    assert Alert.objects.get(pk=alert.pk).escalation_level == 0
    assert list(care_teams_without_escalation()) == [cast.team_b]


def test_a_patient_in_two_teams_escalates_at_the_stricter_pace_to_both_on_calls(cast, ladder):
    cast.clinician_b.email = "on-call-b@example.org"
    cast.clinician_b.save()
    EscalationPolicy.objects.create(care_team=cast.team_b, after=timedelta(minutes=10), on_call=cast.clinician_b)
    # the same programme, also followed by team B (a second episode)
    TreatmentEpisode.objects.create(patient=cast.patient_a, program=cast.program_a, care_team=cast.team_b,
                                    condition_code="DC34", treatment_start=timezone.localdate())
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=10))
    [step] = _escalations(alert)
    assert sorted(step["recipients"]) == sorted([cast.clinician_a.pk, cast.clinician_b.pk])
    assert step["after_minutes"] == 10
    assert sorted(m.to[0] for m in mail.outbox) == ["on-call-a@example.org", "on-call-b@example.org"]
    # each e-mail names the recipient's own team
    by_address = {m.to[0]: m.body for m in mail.outbox}
    assert "Team B" in by_address["on-call-b@example.org"] and "Team A" not in by_address["on-call-b@example.org"]
    # step 2 at twice the stricter time; team B has no lead, team A's lead is told
    alerts_escalate(now=alert.raised_at + timedelta(minutes=20))
    assert _escalations(alert)[1]["recipients"] == [cast.lead_a.pk]


def test_a_step_without_anyone_on_call_is_still_recorded(cast, ladder):
    ladder.on_call = None
    ladder.save()
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=30))
    assert _escalations(alert) == [{"level": 1, "recipients": [], "teams": [cast.team_a.pk], "after_minutes": 30}]
    assert not Notification.objects.exists()


def test_a_policy_with_a_zero_time_is_ignored_instead_of_paging_at_once(cast, ladder):
    ladder.after = timedelta(0)
    ladder.save()
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(hours=1))
    assert Alert.objects.get().escalation_level == 0


# --- notifications ----------------------------------------------------------------------------

def test_a_failing_transport_is_recorded_with_its_error_and_retried_on_a_later_run(cast, ladder, monkeypatch):
    real_send = email_transport.send

    def smtp_down(*, notice):
        raise TransportError("SMTP server refused the connection.")

    monkeypatch.setattr(email_transport, "send", smtp_down)
    alert = _red_alert(cast.patient_a)
    t1 = alert.raised_at + timedelta(minutes=30)
    result = alerts_escalate(now=t1)
    assert (result.sent, result.failed) == (1, 1)
    failed = Notification.objects.get(channel="email")
    assert failed.status == DeliveryStatus.FAILED
    assert failed.error == "TransportError: SMTP server refused the connection."
    assert Notification.objects.get(channel="websocket").status == DeliveryStatus.SENT

    # not retried within the same minute (the run that just failed, or a beat right after it)
    assert alerts_escalate(now=t1 + timedelta(seconds=30)).retried == 0

    monkeypatch.setattr(email_transport, "send", real_send)
    retry = alerts_escalate(now=t1 + timedelta(minutes=1))
    assert (retry.retried, retry.sent) == (1, 1)
    assert _notifications(alert) == [("websocket", "clinician-a", "escalation-1", "sent"),
                                     ("email", "clinician-a", "escalation-1", "failed"),
                                     ("email", "clinician-a", "escalation-1", "sent")]
    assert [m.to for m in mail.outbox] == [["on-call-a@example.org"]]
    # delivered: nothing more to retry
    assert alerts_escalate(now=t1 + timedelta(minutes=5)).retried == 0
    assert len(_escalations(alert)) == 1  # a retry is no new step


def test_retries_stop_after_the_configured_number_of_attempts(cast, ladder, settings, monkeypatch):
    settings.ALERT_NOTIFY_MAX_ATTEMPTS = 3

    def smtp_down(*, notice):
        raise TransportError("down")

    monkeypatch.setattr(email_transport, "send", smtp_down)
    alert = _red_alert(cast.patient_a)
    t1 = alert.raised_at + timedelta(minutes=30)
    for minute in range(0, 10):
        alerts_escalate(now=t1 + timedelta(minutes=minute, seconds=1) if minute else t1)
    assert Notification.objects.filter(channel="email", reason="escalation-1").count() == 3
    assert set(Notification.objects.filter(channel="email").values_list("status", flat=True)) == {"failed"}


def test_a_recipient_without_an_email_address_is_a_failed_attempt_with_the_reason(cast, ladder):
    cast.clinician_a.email = ""
    cast.clinician_a.save()
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=30))
    failed = Notification.objects.get(channel="email")
    assert (failed.status, failed.error) == ("failed", "TransportError: The recipient has no e-mail address.")


def test_failed_notifications_of_an_acknowledged_alert_are_not_retried(cast, ladder, monkeypatch):
    monkeypatch.setattr(email_transport, "send", lambda *, notice: (_ for _ in ()).throw(TransportError("down")))
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=30))
    alert_acknowledge(alert=alert, user=cast.clinician_a)
    assert alerts_escalate(now=alert.raised_at + timedelta(minutes=40)).retried == 0
    assert Notification.objects.filter(channel="email").count() == 1


def test_a_notification_left_sending_by_a_dead_worker_is_failed_and_retried(cast, ladder):
    alert = _red_alert(cast.patient_a)
    t1 = alert.raised_at + timedelta(minutes=30)
    Alert.objects.filter(pk=alert.pk).update(escalation_level=1, escalated_at=t1)
    stuck = Notification.objects.create(alert=alert, channel="email", recipient=cast.clinician_a,
                                        reason="escalation-1", attempted_at=t1)
    alerts_escalate(now=t1 + timedelta(minutes=11))
    stuck.refresh_from_db()
    assert stuck.status == "failed" and stuck.error.startswith("Interrupted")
    assert Notification.objects.filter(channel="email", status="sent").count() == 1
    assert len(mail.outbox) == 1


def test_the_email_names_the_team_and_links_to_triage_but_no_patient_cpr_or_diagnosis(cast, ladder, settings):
    settings.ALERT_LINK_BASE_URL = "https://pro.example.dk/"
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=30))
    [message] = mail.outbox
    text = f"{message.subject}\n{message.body}"
    assert "Team A" in text
    assert "https://pro.example.dk/triage/" in text
    patient = cast.patient_a
    for secret in (patient.cpr, patient.cpr.replace("-", ""), patient.given_name, patient.family_name,
                   str(patient.pk), alert.reason, "SpO2", "88", cast.program_a.condition_code,
                   cast.program_a.condition_display, cast.program_a.name):
        assert secret not in text, secret


def test_the_websocket_notice_goes_to_the_recipients_personal_group_without_patient_data(cast, ladder):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(cast.clinician_a.pk), channel)
    alert = _red_alert(cast.patient_a)
    alerts_escalate(now=alert.raised_at + timedelta(minutes=30))
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "notify"
    notice = message["notification"]
    assert (notice["alert"], notice["level"], notice["team"]) == (alert.pk, 1, "Team A")
    assert cast.patient_a.cpr not in str(notice) and cast.patient_a.given_name not in str(notice)


def test_the_triage_socket_forwards_a_notice_to_the_person_it_names(cast, ladder):
    async def scenario() -> dict:
        communicator = WebsocketCommunicator(AlertConsumer.as_asgi(), "/ws/alerts/")
        communicator.scope["user"] = cast.clinician_a
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        await get_channel_layer().group_send(user_group(cast.clinician_a.pk), {
            "type": "notify", "notification": {"alert": 1, "level": 1, "team": "Team A"}})
        received = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return received

    assert async_to_sync(scenario)() == {"type": "notify",
                                         "notification": {"alert": 1, "level": 1, "team": "Team A"}}


# --- the beat job -----------------------------------------------------------------------------

def test_the_beat_runs_the_escalation_task_every_minute(cast, ladder):
    entry = django_settings.CELERY_BEAT_SCHEDULE["alerts-escalate"]
    assert entry["task"] == escalate_alerts.name == "alerts.tasks_escalation.escalate_alerts"
    assert entry["schedule"] == 60.0
    assert "alerts.tasks_escalation" in django_settings.CELERY_IMPORTS
    _red_alert(cast.patient_a)
    Alert.objects.update(raised_at=timezone.now() - timedelta(minutes=31))
    assert escalate_alerts.delay().get() == {"steps": 1, "sent": 2, "failed": 0, "retried": 0}
    assert Alert.objects.get().escalation_level == 1
