"""The review queue "Svar til gennemsyn" (issue 19): every submitted response gets a colour and a
working-day due time, stays on the clinicians' list until someone marks it as reviewed, and only
that mark tells the patient "Set af dit behandlerteam". Overdue reviews escalate."""

import importlib
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils import timezone

from accounts.models import Role
from alerts.evaluation.responses import response_evaluate
from alerts.models import EscalationPolicy, Notification, ReviewEscalation, Rule, Severity
from alerts.review_escalation import REVIEW_ESCALATE_WITHIN, reviews_escalate
from alerts.transports import TransportError
from alerts.transports import email as email_transport
from audit.models import AuditEvent
from questionnaires.models import QuestionnaireResponse, ResponseReview
from questionnaires.review import (
    AlreadyReviewed,
    response_review,
    responses_review_bulk,
    review_due_at,
    review_queue,
    reviews_overdue_count,
)
from questionnaires.services import response_submit
from tests.factories import make_user, response_items

pytestmark = pytest.mark.django_db

CPH = ZoneInfo("Europe/Copenhagen")


def _submit(cast, patient=None, **answers):
    patient = patient or cast.patient_a
    return response_submit(patient=patient, questionnaire=cast.questionnaire,
                           items=response_items(cast.questionnaire, {"contact": False, **answers}),
                           author=patient.user)


def _end_of(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T23:59:59").replace(tzinfo=CPH)


def _at(when: str) -> datetime:
    return datetime.fromisoformat(when).replace(tzinfo=CPH)


# --- due time -----------------------------------------------------------------------------------

def test_answers_sent_on_a_friday_are_due_at_the_end_of_tuesday_over_the_weekend():
    assert review_due_at(_at("2026-12-04T10:00"), 2) == _end_of("2026-12-08")


def test_the_day_of_arrival_does_not_count_however_early_the_answers_came():
    assert review_due_at(_at("2026-12-07T07:00"), 2) == _end_of("2026-12-09")
    assert review_due_at(_at("2026-12-07T22:30"), 2) == _end_of("2026-12-09")


def test_answers_sent_at_half_past_midnight_danish_time_count_from_that_danish_day():
    # 23:30 UTC on Monday is 00:30 on Tuesday in Copenhagen.
    received = datetime(2026, 12, 7, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert review_due_at(received, 2) == _end_of("2026-12-10")


def test_christmas_days_are_not_working_days_but_christmas_eve_is():
    # Wed 23 Dec: Thu 24 (working), Fri 25 and Sat 26 (holidays), Sun 27, Mon 28.
    assert review_due_at(_at("2026-12-23T12:00"), 2) == _end_of("2026-12-28")


def test_easter_from_maundy_thursday_to_easter_monday_is_skipped():
    # Wed 24 Mar 2027: Thu 25 to Mon 29 are holidays or weekend; Tue 30, Wed 31.
    assert review_due_at(_at("2027-03-24T09:00"), 2) == _end_of("2027-03-31")


def test_new_years_day_and_whit_monday_are_skipped():
    assert review_due_at(_at("2026-12-31T15:00"), 1) == _end_of("2027-01-04")
    assert review_due_at(_at("2026-05-22T15:00"), 1) == _end_of("2026-05-26")  # Mon 25 May: Whit Monday


def test_submission_sets_the_due_time_from_the_programmes_promise(cast):
    cast.program_a.review_workdays = 5
    cast.program_a.save()
    response = _submit(cast)
    assert response.review_due_at == review_due_at(timezone.now(), 5)
    other = _submit(cast, patient=cast.patient_b)  # programme B keeps the default of 2
    assert other.review_due_at == review_due_at(timezone.now(), 2)


# --- colour ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("answers", "colour"), [
    ({}, "green"),
    ({"swelling": True}, "yellow"),
    ({"contact": True}, "yellow"),
    ({"breathless": "much-worse", "swelling": True}, "red"),
])
def test_a_submitted_response_takes_the_worst_colour_of_its_answers(cast, answers, colour):
    assert _submit(cast, **answers).review_colour == colour


def test_an_open_alert_raised_by_the_response_lifts_its_colour_but_never_lowers_it(cast):
    Rule.objects.create(program=cast.program_a, kind="answer", name="No swelling is red (test)",
                        severity=Severity.RED,
                        params={"questionnaire": cast.questionnaire.url, "link_id": "swelling", "codes": ["false"]})
    response = _submit(cast)
    assert response.review_colour == "green"
    response_evaluate(response_id=response.pk)
    response.refresh_from_db()
    assert response.review_colour == "red"
    red = _submit(cast, breathless="much-worse", contact=True)  # the contact alert is yellow
    response_evaluate(response_id=red.pk)
    red.refresh_from_db()
    assert red.review_colour == "red"


# --- the list ----------------------------------------------------------------------------------

def test_the_list_shows_red_then_yellow_then_green_and_within_a_colour_the_earliest_deadline(cast):
    green = _submit(cast)
    yellow_late = _submit(cast, swelling=True)
    red = _submit(cast, breathless="much-worse")
    yellow_early = _submit(cast, contact=True)
    QuestionnaireResponse.objects.filter(pk=yellow_early.pk).update(review_due_at=yellow_late.review_due_at
                                                                    - timedelta(days=1))
    assert [r.pk for r in review_queue(cast.clinician_a)] == [red.pk, yellow_early.pk, yellow_late.pk, green.pk]


def test_the_review_page_lists_the_teams_patients_only_and_audits_each_patient_shown(cast, client):
    mine = _submit(cast)
    theirs = _submit(cast, patient=cast.patient_b)
    QuestionnaireResponse.objects.filter(pk=mine.pk).update(review_due_at=timezone.now() - timedelta(hours=1))
    client.force_login(cast.clinician_a)
    page = client.get("/reviews/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="review-{mine.pk}"' in html and f'id="review-{theirs.pk}"' not in html
    assert "Alma" in html and "Bodil" not in html
    assert "Overskredet" in html  # Danish: overdue
    assert AuditEvent.objects.filter(resource=f"QuestionnaireResponse/{mine.pk} (review list)",
                                     patient_ref=cast.patient_a.pk, username="clinician-a").exists()
    assert not AuditEvent.objects.filter(patient_ref=cast.patient_b.pk, username="clinician-a").exists()


def test_only_green_responses_get_a_checkbox_on_the_list(cast, client):
    green, red = _submit(cast), _submit(cast, breathless="much-worse")
    client.force_login(cast.clinician_a)
    html = client.get("/reviews/").content.decode()
    assert f'name="ids" value="{green.pk}"' in html
    assert f'name="ids" value="{red.pk}"' not in html


def test_patients_and_administrators_cannot_open_or_use_the_review_pages(cast, client):
    response = _submit(cast)
    for user in (cast.patient_a.user, cast.admin, cast.quality):
        client.force_login(user)
        assert client.get("/reviews/").status_code == 403
        assert client.post("/reviews/bulk/", {"ids": [response.pk]}).status_code == 403
        assert client.post(f"/patients/{cast.patient_a.pk}/responses/{response.pk}/review/").status_code == 403
    assert not ResponseReview.objects.exists()


def test_a_clinician_of_another_team_can_neither_see_nor_review_the_response(cast, client):
    response = _submit(cast)
    assert list(review_queue(cast.clinician_b)) == []
    client.force_login(cast.clinician_b)
    assert client.post(f"/patients/{cast.patient_a.pk}/responses/{response.pk}/review/").status_code == 404
    page = client.post("/reviews/bulk/", {"ids": [response.pk]})
    assert page.status_code == 400 and "findes ikke" in page.content.decode()
    with pytest.raises(ValidationError):
        response_review_bulk_as(cast.clinician_b, [response.pk])
    assert not ResponseReview.objects.exists()


def response_review_bulk_as(user, ids):
    return responses_review_bulk(response_ids=ids, user=user)


# --- marking as reviewed -----------------------------------------------------------------------

def test_marking_a_response_as_reviewed_takes_it_off_the_list_and_is_audited(cast, client):
    response = _submit(cast, breathless="much-worse")
    client.force_login(cast.clinician_a)
    done = client.post(f"/patients/{cast.patient_a.pk}/responses/{response.pk}/review/",
                       {f"review-{response.pk}-note": "Ringet op, har det bedre."})
    assert done.status_code == 302 and done.url.endswith(f"#response-{response.pk}")
    review = ResponseReview.objects.get()
    assert (review.response, review.reviewed_by, review.note) == (response, cast.clinician_a,
                                                                  "Ringet op, har det bedre.")
    assert AuditEvent.objects.filter(resource=f"QuestionnaireResponse/{response.pk} review",
                                     patient_ref=cast.patient_a.pk).exists()
    assert list(review_queue(cast.clinician_a)) == []


def test_reviewing_twice_tells_who_was_first_in_danish_and_stores_nothing_more(cast, client, settings):
    response = _submit(cast)
    colleague = make_user("clinician-a2", Role.CLINICIAN, first_name="Anna", last_name="Andersen")
    cast.team_a.members.add(colleague)
    response_review(response=response, user=colleague)
    with pytest.raises(AlreadyReviewed):
        response_review(response=response, user=cast.clinician_a)
    client.force_login(cast.clinician_a)
    page = client.post(f"/patients/{cast.patient_a.pk}/responses/{response.pk}/review/")
    assert page.status_code == 409
    assert "Anna Andersen har allerede markeret disse svar som gennemset" in page.content.decode()
    assert ResponseReview.objects.get().reviewed_by == colleague


def test_a_note_that_is_too_long_is_refused_next_to_the_field_in_danish(cast, client):
    response = _submit(cast)
    client.force_login(cast.clinician_a)
    page = client.post(f"/patients/{cast.patient_a.pk}/responses/{response.pk}/review/",
                       {f"review-{response.pk}-note": "x" * 2001})
    html = page.content.decode()
    assert page.status_code == 400
    assert f'id="id_review-{response.pk}-note-errors"' in html and "højst" in html
    assert not ResponseReview.objects.exists()
    with pytest.raises(ValidationError) as refused:
        response_review(response=response, user=cast.clinician_a, note="x" * 2001)
    assert "note" in refused.value.message_dict
    assert not ResponseReview.objects.exists()


def test_green_responses_are_reviewed_in_bulk_from_the_list(cast, client):
    first, second = _submit(cast), _submit(cast)
    client.force_login(cast.clinician_a)
    done = client.post("/reviews/bulk/", {"ids": [first.pk, second.pk]})
    assert done.status_code == 302
    assert set(ResponseReview.objects.filter(bulk=True).values_list("response_id", flat=True)) == {first.pk, second.pk}
    assert list(review_queue(cast.clinician_a)) == []


def test_bulk_reviewing_a_red_response_is_refused_in_danish_and_stores_nothing(cast, client):
    green, red = _submit(cast), _submit(cast, breathless="much-worse")
    client.force_login(cast.clinician_a)
    page = client.post("/reviews/bulk/", {"ids": [green.pk, red.pk]})
    html = page.content.decode()
    assert page.status_code == 400
    assert 'id="review-errors"' in html
    assert "Alma" in html and "røde og gule svar gennemses ét ad gangen" in html
    assert not ResponseReview.objects.exists()


@pytest.mark.parametrize("ids", [[], ["abc"]])
def test_a_bulk_review_without_usable_ids_is_refused_with_a_message(cast, client, ids):
    _submit(cast)
    client.force_login(cast.clinician_a)
    page = client.post("/reviews/bulk/", {"ids": ids})
    assert page.status_code == 400 and 'id="review-errors"' in page.content.decode()
    assert not ResponseReview.objects.exists()


def test_bulk_reviewing_an_already_reviewed_response_refuses_the_lot(cast):
    first, second = _submit(cast), _submit(cast)
    response_review(response=first, user=cast.clinician_a)
    with pytest.raises(ValidationError):
        responses_review_bulk(response_ids=[first.pk, second.pk], user=cast.clinician_a)
    assert list(ResponseReview.objects.values_list("response_id", flat=True)) == [first.pk]


# --- what the patient sees ---------------------------------------------------------------------

def test_the_patient_sees_set_af_dit_behandlerteam_only_after_the_review(cast, client):
    response = _submit(cast)
    client.force_login(cast.clinician_a)
    client.get(f"/patients/{cast.patient_a.pk}/")  # opening the page is no review
    client.force_login(cast.patient_a.user)
    receipt = f"/me/questionnaires/{cast.questionnaire.pk}/thanks/"
    assert "Set af dit behandlerteam" not in client.get("/me/answers/").content.decode()
    assert "Set af dit behandlerteam" not in client.get(receipt).content.decode()
    response_review(response=response, user=cast.clinician_a)
    assert "Set af dit behandlerteam" in client.get("/me/answers/").content.decode()
    assert "Set af dit behandlerteam" in client.get(receipt).content.decode()


def test_the_receipt_promises_the_programmes_number_of_working_days(cast, client):
    cast.program_a.review_workdays = 3
    cast.program_a.save()
    _submit(cast)
    client.force_login(cast.patient_a.user)
    client.cookies["django_language"] = "en"
    html = client.get(f"/me/questionnaires/{cast.questionnaire.pk}/thanks/").content.decode()
    assert "within 3 weekdays" in html


# --- worklist and escalation -------------------------------------------------------------------

def test_the_worklist_counts_overdue_reviews_and_links_to_the_list(cast, client):
    late, _on_time = _submit(cast), _submit(cast)
    QuestionnaireResponse.objects.filter(pk=late.pk).update(review_due_at=timezone.now() - timedelta(minutes=1))
    assert reviews_overdue_count(cast.clinician_a) == 1
    assert reviews_overdue_count(cast.clinician_b) == 0
    client.force_login(cast.clinician_a)
    html = client.get("/triage/").content.decode()
    assert 'href="/reviews/"' in html and "1 over fristen" in html


@pytest.fixture
def ladder(cast):
    cast.clinician_a.email = "on-call-a@example.org"
    cast.clinician_a.save()
    lead = make_user("lead-a", Role.CLINICIAN, email="lead-a@example.org")
    cast.team_a.members.add(lead)
    cast.lead_a = lead
    return EscalationPolicy.objects.create(care_team=cast.team_a, after=timedelta(minutes=30),
                                           on_call=cast.clinician_a, lead=lead)


def test_an_overdue_review_climbs_the_alert_ladder_once_per_step_until_reviewed(cast, ladder, settings):
    settings.ALERT_NOTIFY_CHANNELS = ["email"]
    response = _submit(cast)
    due = response.review_due_at
    assert reviews_escalate(now=due + timedelta(minutes=29)).steps == 0
    first = reviews_escalate(now=due + timedelta(minutes=30))
    assert (first.steps, first.sent) == (1, 1)
    assert reviews_escalate(now=due + timedelta(minutes=30)).steps == 0  # claimed: nothing twice
    assert [m.to for m in mail.outbox] == [["on-call-a@example.org"]]
    assert "Alma" not in mail.outbox[0].body and "/reviews/" in mail.outbox[0].body
    assert list(Notification.objects.values_list("response_id", "reason", "status")) == [
        (response.pk, "review-escalation-1", "sent")]
    response_review(response=response, user=cast.clinician_a)
    assert reviews_escalate(now=due + timedelta(hours=2)).steps == 0  # reviewed: the ladder stops
    assert list(ReviewEscalation.objects.values_list("level", flat=True)) == [1]


def test_both_steps_are_recorded_when_the_job_was_down_and_old_overdue_answers_page_nobody(cast, ladder, settings):
    settings.ALERT_NOTIFY_CHANNELS = ["email"]
    recent, old = _submit(cast), _submit(cast)
    QuestionnaireResponse.objects.filter(pk=old.pk).update(
        review_due_at=recent.review_due_at - REVIEW_ESCALATE_WITHIN - timedelta(days=1))
    result = reviews_escalate(now=recent.review_due_at + timedelta(hours=3))
    assert result.steps == 2
    assert sorted(ReviewEscalation.objects.values_list("response_id", "level")) == [(recent.pk, 1), (recent.pk, 2)]
    assert sorted(m.to[0] for m in mail.outbox) == ["lead-a@example.org", "on-call-a@example.org"]


# --- existing responses ------------------------------------------------------------------------

def test_the_data_migration_gives_existing_responses_their_honest_due_time_and_colour(cast):
    answered = timezone.now() - timedelta(days=10)
    old = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, authored_at=answered, author=cast.patient_a.user,
        items=response_items(cast.questionnaire, {"contact": False, "swelling": True}))
    migration = importlib.import_module("alerts.migrations.0005_existing_responses_review")
    migration.forwards(apps, None)
    old.refresh_from_db()
    assert old.review_due_at == review_due_at(answered, 2)
    assert old.review_colour == "yellow"
    assert not ResponseReview.objects.exists()  # owed a look, not marked as seen
    assert [r.pk for r in review_queue(cast.clinician_a)] == [old.pk]


def test_an_administrator_sees_the_colour_on_the_patient_page_but_gets_no_review_button(cast, client):
    response = _submit(cast, swelling=True)
    client.force_login(cast.admin)
    html = client.get(f"/patients/{cast.patient_a.pk}/").content.decode()
    assert f'id="response-{response.pk}"' in html and 'class="badge yellow"' in html
    assert f"/responses/{response.pk}/review/" not in html
    client.force_login(cast.clinician_a)
    assert f"/responses/{response.pk}/review/" in client.get(f"/patients/{cast.patient_a.pk}/").content.decode()


def test_two_nurses_at_the_same_moment_store_one_review_and_the_second_is_told_who_was_first(live_cast):
    """The first holds its transaction open while the second, from the list, bulk-reviews the
    same response: the second waits on the row lock, then finds the review and stores nothing."""
    cast = live_cast
    response = _submit(cast)
    colleague = make_user("clinician-a2", Role.CLINICIAN, first_name="Anna", last_name="Andersen")
    cast.team_a.members.add(colleague)
    first_stored, release_first = threading.Event(), threading.Event()
    outcome: dict[str, Exception] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                response_review(response=response, user=colleague)
                first_stored.set()
                assert release_first.wait(10)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            responses_review_bulk(response_ids=[response.pk], user=cast.clinician_a)
        except ValidationError as exc:
            outcome["second"] = exc
        finally:
            connections.close_all()

    a = threading.Thread(target=first)
    a.start()
    assert first_stored.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(1)
    assert b.is_alive()  # waiting for the first nurse's row lock, not storing a second review
    release_first.set()
    a.join(10)
    b.join(10)
    assert "already marked as reviewed" in str(outcome["second"]) or "allerede" in str(outcome["second"])
    assert list(ResponseReview.objects.values_list("reviewed_by__username", flat=True)) == ["clinician-a2"]


def test_a_failed_notice_about_an_overdue_review_is_retried_until_the_review_is_done(cast, ladder, settings,
                                                                                     monkeypatch):
    settings.ALERT_NOTIFY_CHANNELS = ["email"]
    settings.ALERT_NOTIFY_RETRY_SECONDS = 60
    real_send = email_transport.send

    def smtp_down(*, notice):
        raise TransportError("SMTP server refused the connection.")

    response = _submit(cast)
    due = response.review_due_at
    monkeypatch.setattr(email_transport, "send", smtp_down)
    assert reviews_escalate(now=due + timedelta(minutes=30)).failed == 1
    assert Notification.objects.get().error == "TransportError: SMTP server refused the connection."
    monkeypatch.setattr(email_transport, "send", real_send)
    assert reviews_escalate(now=due + timedelta(minutes=30, seconds=30)).retried == 0  # too soon
    again = reviews_escalate(now=due + timedelta(minutes=32))
    assert (again.retried, again.sent) == (1, 1) and len(mail.outbox) == 1
    # A failure about a review that is done meanwhile is not retried.
    monkeypatch.setattr(email_transport, "send", smtp_down)
    reviews_escalate(now=due + timedelta(minutes=60))  # step 2 (the lead), fails
    response_review(response=response, user=cast.clinician_a)
    monkeypatch.setattr(email_transport, "send", real_send)
    assert reviews_escalate(now=due + timedelta(minutes=70)).retried == 0


def test_the_data_migration_lifts_an_existing_response_to_the_colour_of_its_open_alert(cast):
    Rule.objects.create(program=cast.program_a, kind="answer", name="No swelling is red (test)",
                        severity=Severity.RED,
                        params={"questionnaire": cast.questionnaire.url, "link_id": "swelling", "codes": ["false"]})
    old = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user,
        items=response_items(cast.questionnaire, {"contact": False}))
    response_evaluate(response_id=old.pk)
    QuestionnaireResponse.objects.filter(pk=old.pk).update(review_colour="", review_due_at=None)
    importlib.import_module("alerts.migrations.0005_existing_responses_review").forwards(apps, None)
    old.refresh_from_db()
    assert old.review_colour == "red"
