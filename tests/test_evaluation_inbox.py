"""The evaluation inbox (alerts.evaluation, ADR 0020): every source's work for the rules is one row,
written in the source's own transaction, claimed once, held back until ``not_before``, and found
again by the sweep when its task was lost."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from alerts.evaluation import PendingEvaluation, Source, enqueue
from alerts.evaluation.inbox import inbox_claim
from alerts.evaluation.missed import missed_evaluate
from alerts.evaluation.readings import readings_evaluate
from alerts.evaluation.services import pending_evaluate, pending_sweep
from alerts.models import Alert, AlertFinding, Rule
from monitoring.ingest import readings_ingest
from monitoring.models import Reading
from monitoring.models import Source as ReadingSource
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from questionnaires.services import response_submit
from schedules.models import MissedOccurrence, Occurrence, OccurrenceStatus, Schedule
from schedules.services import occurrences_advance
from tests.factories import make_cast, response_items

DAY = timedelta(days=1)


def _low_spo2(cast, value: int = 85) -> Reading:
    return Reading.objects.create(patient=cast.patient_a, measure="spo2", value=value, unit="%",
                                  effective_at=timezone.now() - timedelta(minutes=5), source=ReadingSource.API)


class _Refused(Exception):
    pass


# --- written in the source's transaction ----------------------------------------------------------

@pytest.mark.django_db
def test_an_ingest_rolled_back_leaves_neither_its_readings_nor_an_inbox_row(cast):
    item = {"measure": "spo2", "value": 85, "unit": "%", "effective_at": timezone.now() - timedelta(minutes=1)}
    with pytest.raises(_Refused), transaction.atomic():
        [result] = readings_ingest(patient=cast.patient_a, items=[item], source=ReadingSource.API)
        assert result.status == 201
        assert PendingEvaluation.objects.filter(source=Source.READING).count() == 1  # in the same transaction
        raise _Refused
    assert not Reading.objects.exists() and not PendingEvaluation.objects.exists()


@pytest.mark.django_db
def test_an_answer_rolled_back_leaves_no_inbox_row_and_a_stored_one_leaves_exactly_one(
        cast, django_capture_on_commit_callbacks):
    items = response_items(cast.questionnaire, {"contact": False})
    with pytest.raises(_Refused), transaction.atomic():
        response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                        author=cast.patient_a.user)
        raise _Refused
    assert not QuestionnaireResponse.objects.exists() and not PendingEvaluation.objects.exists()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                                   author=cast.patient_a.user)
    (row,) = PendingEvaluation.objects.all()
    assert (row.source, row.object_ids) == (Source.RESPONSE, [response.pk])
    assert len(callbacks) == 1  # the task is asked for after commit only
    callbacks[0]()  # the commit: tasks run in-process here
    response.refresh_from_db()
    assert response.evaluated_at is not None and not PendingEvaluation.objects.exists()


@pytest.mark.django_db
def test_a_recorded_miss_waits_in_the_inbox_until_its_deadline(cast):
    schedule = Schedule.objects.create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                                       kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                                       window=timedelta(hours=12))
    due = timezone.now() - 2 * DAY
    occurrence = Occurrence.objects.create(
        patient=cast.patient_a, episode=cast.patient_a.episodes.get(), schedule=schedule,
        questionnaire_url=schedule.questionnaire_url, questionnaire=cast.questionnaire,
        opens_at=due, due_at=due, closes_at=due + schedule.window, status=OccurrenceStatus.OPEN)
    occurrences_advance(now=occurrence.closes_at + timedelta(minutes=1))
    missed = MissedOccurrence.objects.get(occurrence=occurrence)
    (row,) = PendingEvaluation.objects.all()
    assert (row.source, row.object_ids, row.not_before) == (Source.MISSED, [missed.pk], occurrence.closes_at)


# --- not_before --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_row_is_neither_claimed_nor_swept_before_its_not_before(cast):
    Rule.objects.create(program=cast.program_a, kind="missed", name="Not answered", severity="yellow",
                        params={"questionnaire": cast.questionnaire.url, "grace_hours": 0})
    schedule = Schedule.objects.create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                                       kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                                       window=timedelta(hours=12))
    due = timezone.now() - 2 * DAY
    occurrence = Occurrence.objects.create(
        patient=cast.patient_a, episode=cast.patient_a.episodes.get(), schedule=schedule,
        questionnaire_url=schedule.questionnaire_url, questionnaire=cast.questionnaire,
        opens_at=due, due_at=due, closes_at=due + schedule.window, status=OccurrenceStatus.MISSED)
    missed = MissedOccurrence.objects.create(occurrence=occurrence, recorded_at=occurrence.closes_at)
    later = timezone.now() + timedelta(hours=1)
    inbox_id = enqueue(source=Source.MISSED, ids=[missed.pk], not_before=later)

    assert pending_sweep(older_than_seconds=0) == 0
    assert pending_evaluate(inbox_ids=[inbox_id]) == 0  # a task asked for it early does nothing
    with transaction.atomic():
        assert inbox_claim(inbox_id=inbox_id, source=Source.MISSED, now=timezone.now()) is None
    assert PendingEvaluation.objects.filter(pk=inbox_id).exists() and not Alert.objects.exists()

    assert missed_evaluate(now=later) == 1  # once it is due
    assert not PendingEvaluation.objects.exists() and Alert.objects.count() == 1


# --- the sweep -----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_sweep_evaluates_rows_whose_task_was_lost_and_leaves_young_ones_to_their_task(cast, settings):
    settings.ALERTS_COALESCE_SECONDS = 0  # else the swept task takes the young batch along (coalescing)
    lost = enqueue(source=Source.READING, ids=[_low_spo2(cast).pk], after_commit=False)
    young = enqueue(source=Source.READING, ids=[_low_spo2(cast, 84).pk], after_commit=False)
    PendingEvaluation.objects.filter(pk=lost).update(not_before=timezone.now() - timedelta(minutes=5))

    assert pending_sweep(older_than_seconds=30) == 1  # tasks run in-process here
    assert list(PendingEvaluation.objects.values_list("id", flat=True)) == [young]
    (alert,) = Alert.objects.all()
    assert alert.severity == "red" and AlertFinding.objects.count() == 1

    assert pending_sweep(older_than_seconds=0) == 1
    assert not PendingEvaluation.objects.exists() and AlertFinding.objects.count() == 2


@pytest.mark.django_db
def test_a_task_given_rows_of_every_source_evaluates_each_once(cast):
    response = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, items=[], status=ResponseStatus.COMPLETED,
        authored_at=timezone.now(), received_at=timezone.now())
    ids = [enqueue(source=Source.READING, ids=[_low_spo2(cast).pk], after_commit=False),
           enqueue(source=Source.RESPONSE, ids=[response.pk], after_commit=False)]
    assert pending_evaluate(inbox_ids=ids) == 2
    assert pending_evaluate(inbox_ids=ids) == 0  # delivered twice: nothing left to claim
    response.refresh_from_db()
    assert response.evaluated_at is not None and Alert.objects.count() == 1
    assert not PendingEvaluation.objects.exists()


@pytest.mark.django_db
def test_an_answers_task_claims_no_reading_batch_and_leaves_the_waiting_mark_alone(
        cast, django_capture_on_commit_callbacks):
    # A reading batch has a task of its own (or relies on the one waiting, ADR 0011): an answer's
    # task does not run the reading claim — a transaction and four statements on every answer.
    from unittest import mock

    from alerts.evaluation import dispatch

    waiting = enqueue(source=Source.READING, ids=[_low_spo2(cast).pk], after_commit=False)
    items = response_items(cast.questionnaire, {"contact": False})
    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send, \
            django_capture_on_commit_callbacks(execute=True):
        response = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                                   author=cast.patient_a.user)
    (call,) = send.call_args_list
    answer_row = PendingEvaluation.objects.get(source=Source.RESPONSE).pk
    assert call.args[:2] == (([answer_row],), {"readings": False})

    with mock.patch.object(dispatch, "taken") as taken:
        assert pending_evaluate(inbox_ids=[answer_row], readings=False) == 1
    taken.assert_not_called()
    response.refresh_from_db()
    assert response.evaluated_at is not None
    assert list(PendingEvaluation.objects.values_list("id", flat=True)) == [waiting]
    assert not Alert.objects.exists()  # the low SpO2 is its own task's (or the sweep's) to judge

    # Given a reading batch's id by mistake, such a task leaves it waiting — for the sweep,
    # which sends it a reading task — rather than dropping it.
    assert pending_evaluate(inbox_ids=[waiting], readings=False) == 0
    assert PendingEvaluation.objects.filter(pk=waiting).exists()
    PendingEvaluation.objects.filter(pk=waiting).update(not_before=timezone.now() - timedelta(minutes=5))
    assert pending_sweep(older_than_seconds=30) == 1  # tasks run in-process here
    assert not PendingEvaluation.objects.exists() and Alert.objects.get().severity == "red"


# --- one claim, exclusive (PostgreSQL: row locks) -------------------------------------------------------

@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_rows_at_once_evaluate_each_once():
    cast = make_cast()
    readings = [_low_spo2(cast, 80 + i) for i in range(5)]
    batch = enqueue(source=Source.READING, ids=[r.pk for r in readings], after_commit=False)
    response = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, items=[], status=ResponseStatus.COMPLETED,
        authored_at=timezone.now(), received_at=timezone.now())
    answer = enqueue(source=Source.RESPONSE, ids=[response.pk], after_commit=False)

    # The first claimer holds its claim (an open transaction) while the second tries.
    held, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                seen["first"] = inbox_claim(inbox_id=answer, source=Source.RESPONSE, now=timezone.now())
                held.set()
                assert release.wait(10)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            with transaction.atomic():
                seen["second"] = inbox_claim(inbox_id=answer, source=Source.RESPONSE, now=timezone.now())
        finally:
            connections.close_all()

    a = threading.Thread(target=first)
    a.start()
    assert held.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(10)
    release.set()
    a.join(10)
    assert seen["first"] is not None and seen["second"] is None  # skipped, not waited for

    # Two tasks with the same batches at the same moment: each reading is evaluated once.
    counts: list[int] = []
    start = threading.Barrier(2)

    def task() -> None:
        try:
            start.wait(10)
            counts.append(readings_evaluate(batch_ids=[batch]) + pending_evaluate(inbox_ids=[answer]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=task) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(counts) in ([0, 6], [1, 5])  # between them: 5 readings and the answer, once each
    assert AlertFinding.objects.filter(source_key__startswith="reading:").count() == 5
    assert Alert.objects.filter(severity="red").count() == 1
    assert not PendingEvaluation.objects.exists()


# --- upgrading: nothing waiting is lost -------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_every_waiting_reading_answer_and_miss_into_the_inbox():
    cast = make_cast()
    reading = _low_spo2(cast)
    now = timezone.now()
    waiting_answer = QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, items=[], status=ResponseStatus.COMPLETED,
        authored_at=now, received_at=now - timedelta(minutes=3))
    QuestionnaireResponse.objects.create(  # evaluated already: nothing to carry
        patient=cast.patient_a, questionnaire=cast.questionnaire, items=[], status=ResponseStatus.COMPLETED,
        authored_at=now, received_at=now, evaluated_at=now, identifier="done")
    schedule = Schedule.objects.create(program=cast.program_a, name="daily", questionnaire_url=cast.questionnaire.url,
                                       kind="every", params={"every_days": 1, "from_day": 0, "to_day": 60},
                                       window=timedelta(hours=12))
    due = now - 2 * DAY
    occurrence = Occurrence.objects.create(
        patient=cast.patient_a, episode=cast.patient_a.episodes.get(), schedule=schedule,
        questionnaire_url=schedule.questionnaire_url, questionnaire=cast.questionnaire,
        opens_at=due, due_at=due, closes_at=due + schedule.window, status=OccurrenceStatus.MISSED)
    missed = MissedOccurrence.objects.create(occurrence=occurrence, recorded_at=occurrence.closes_at)

    before = [("alerts", "0008_danish_admin_names_and_rule_kind_choices"), ("monitoring", "0011_reading_trend_keyset")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    old_batch_at = now - timedelta(minutes=7)
    old.get_model("monitoring", "PendingEvaluation").objects.create(
        reading_ids=[reading.pk], size=1, created_at=old_batch_at)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = {row.source: row for row in PendingEvaluation.objects.all()}
    assert set(rows) == {Source.READING, Source.RESPONSE, Source.MISSED} and PendingEvaluation.objects.count() == 3
    assert (rows[Source.READING].object_ids, rows[Source.READING].not_before) == ([reading.pk], old_batch_at)
    assert (rows[Source.RESPONSE].object_ids, rows[Source.RESPONSE].not_before) == (
        [waiting_answer.pk], waiting_answer.received_at)
    assert (rows[Source.MISSED].object_ids, rows[Source.MISSED].not_before) == ([missed.pk], occurrence.closes_at)
    # ... and the sweep evaluates them.
    assert pending_sweep(older_than_seconds=60) == 3
    assert not PendingEvaluation.objects.exists()
    assert AlertFinding.objects.filter(source_key=f"reading:{reading.pk}").exists()
