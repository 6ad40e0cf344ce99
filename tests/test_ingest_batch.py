"""POST /api/v1/readings with a batch: good items stored, bad ones reported by index, one
evaluation per batch, duplicates stored once, a device only ever sends for its own patient."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from alerts.evaluation import PendingEvaluation, dispatch
from alerts.evaluation import tasks as evaluation_tasks
from alerts.evaluation.readings import readings_evaluate
from alerts.models import Alert
from alerts.selectors_readings import readings_unevaluated_ids
from monitoring.ingest import MAX_BATCH
from monitoring.models import Reading

pytestmark = pytest.mark.django_db

URL = "/api/v1/readings"


def _when(minutes_ago: int = 10) -> str:
    return (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()


def _item(i: int = 0, **overrides):
    body = {"measure": "spo2", "value": 95, "unit": "%", "effective_at": _when(10 + i), "client_id": f"c{i}"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def _post(client, body, token):
    return client.post(URL, body, content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"})


def test_a_batch_as_a_list_stores_every_reading_and_answers_201_per_index(cast, client):
    response = _post(client, [_item(i) for i in range(5)], cast.device_token_a)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(i, 201) for i in range(5)]
    stored = dict(Reading.objects.values_list("client_id", "id"))
    assert [r["id"] for r in results] == [stored[f"c{i}"] for i in range(5)]
    assert set(Reading.objects.values_list("patient", flat=True)) == {cast.patient_a.pk}


def test_a_batch_wrapped_in_readings_is_accepted_too(cast, client):
    response = _post(client, {"readings": [_item(0), _item(1)]}, cast.device_token_a)
    assert response.status_code == 200
    assert Reading.objects.count() == 2


def test_blood_pressure_glucose_and_converted_units_are_stored_canonically(cast, client):
    items = [
        _item(0, measure="blood-pressure", value=..., systolic=135, diastolic=85, unit="mm[Hg]"),
        _item(1, measure="NPU03804", value=200, unit="[lb_av]"),
        _item(2, measure="glucose", value=90, unit="mg/dL"),
        _item(3, measure="body-temperature", value=98.6, unit="[degF]"),
    ]
    client.force_login(cast.patient_a.user)  # by hand: a device's token sends its own kind's measures only
    assert client.post(URL, items, content_type="application/json").status_code == 200
    got = {r.client_id: r for r in Reading.objects.all()}
    assert (got["c0"].measure, got["c0"].value, got["c0"].value2, got["c0"].unit) == (
        "blood-pressure", 135, 85, "mm[Hg]")
    assert (got["c1"].measure, str(got["c1"].value), got["c1"].unit) == ("body-weight", "90.718", "kg")
    assert got["c1"].original == {"system": "NPU", "code": "NPU03804", "unit": "[lb_av]", "value": "200"}
    assert (str(got["c2"].value), got["c2"].unit) == ("4.996", "mmol/L")
    assert str(got["c3"].value) == "37.000"


def test_unusual_value_is_stored_and_flagged(cast, client):
    response = _post(client, [_item(0, value=80), _item(1, value=97)], cast.device_token_a)
    assert [r["unusual"] for r in response.json()["results"]] == [True, False]
    assert dict(Reading.objects.values_list("client_id", "unusual")) == {"c0": True, "c1": False}


def test_bad_items_are_reported_by_index_and_the_good_ones_stored(cast, client):
    items = [_item(0), _item(1, value=101), _item(2, unit="kg"), _item(3),
             _item(4, effective_at=(timezone.now() + timedelta(hours=2)).isoformat()),
             _item(5, measure="blood-pressure", value=..., systolic=80, diastolic=90, unit="mm[Hg]"),
             "not an object"]
    response = _post(client, items, cast.device_token_a)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 400, 400, 201, 400, 400, 400]
    assert "value" in results[1]["errors"]
    assert "unit" in results[2]["errors"]
    assert "effective_at" in results[4]["errors"]
    assert "systolic" in results[5]["errors"]
    assert "non_field_errors" in results[6]["errors"]
    assert sorted(Reading.objects.values_list("client_id", flat=True)) == ["c0", "c3"]


def test_a_batch_with_no_good_item_answers_400_and_stores_nothing(cast, client):
    response = _post(client, [_item(0, value=101), _item(1, unit=...)], cast.device_token_a)
    assert response.status_code == 400
    assert [r["status"] for r in response.json()["results"]] == [400, 400]
    assert not Reading.objects.exists()


def test_a_batch_over_the_limit_is_refused_naming_the_limit_and_stores_nothing(cast, client):
    response = _post(client, [_item(i) for i in range(MAX_BATCH + 1)], cast.device_token_a)
    assert response.status_code == 400
    assert "1,000" in response.json()["readings"][0]
    assert not Reading.objects.exists()


def test_a_batch_of_exactly_the_limit_is_stored(cast, client):
    assert _post(client, [_item(i) for i in range(MAX_BATCH)], cast.device_token_a).status_code == 200
    assert Reading.objects.count() == MAX_BATCH


def test_an_empty_batch_is_refused(cast, client):
    assert _post(client, [], cast.device_token_a).status_code == 400


def test_late_upload_days_old_is_stored_and_evaluated(cast, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, [_item(0, value=88, effective_at=_when(60 * 24 * 5))], cast.device_token_a)
    assert response.json()["results"][0]["status"] == 201
    assert not readings_unevaluated_ids()
    assert Alert.objects.get().evidence["value"] == "88"


# --- idempotency -----------------------------------------------------------------------------

def test_resending_a_batch_answers_200_with_the_same_ids_and_stores_nothing_new(cast, client):
    items = [_item(i) for i in range(3)]
    first = _post(client, items, cast.device_token_a).json()["results"]
    second = _post(client, items, cast.device_token_a).json()["results"]
    assert [r["status"] for r in second] == [200, 200, 200]
    assert [r["id"] for r in first] == [r["id"] for r in second]
    assert Reading.objects.count() == 3


def test_same_client_id_with_other_content_is_409_for_that_item_only(cast, client):
    first = _item(0)
    _post(client, [first], cast.device_token_a)
    response = _post(client, [{**first, "value": 96}, _item(1)], cast.device_token_a)
    assert [r["status"] for r in response.json()["results"]] == [409, 201]
    assert "client_id" in response.json()["results"][0]["errors"]
    assert Reading.objects.get(client_id="c0").value == 95


def test_same_client_id_twice_in_one_batch_is_stored_once_or_409_if_different(cast, client):
    item = _item(0)
    items = [item, dict(item), {**item, "value": 90}]
    results = _post(client, items, cast.device_token_a).json()["results"]
    assert [r["status"] for r in results] == [201, 200, 409]
    assert results[0]["id"] == results[1]["id"]
    assert Reading.objects.count() == 1


def test_same_device_measure_time_and_value_without_client_id_is_stored_once(cast, client):
    when = _when(30)
    item = _item(0, client_id=..., effective_at=when)
    first = _post(client, [item, item], cast.device_token_a).json()["results"]
    assert [r["status"] for r in first] == [201, 200]
    again = _post(client, [item], cast.device_token_a).json()["results"]
    assert again[0] == {"index": 0, "status": 200, "id": first[0]["id"], "unusual": False}
    other_value = _post(client, [_item(0, client_id=..., effective_at=when, value=96)], cast.device_token_a)
    assert other_value.json()["results"][0]["status"] == 201
    assert Reading.objects.count() == 2


def test_the_same_time_and_value_from_another_patients_device_is_a_different_reading(cast, client):
    item = _item(0, client_id=..., effective_at=_when(30))
    _post(client, [item], cast.device_token_a)
    assert _post(client, [item], cast.device_token_b).json()["results"][0]["status"] == 201


# --- device scope ----------------------------------------------------------------------------

def test_item_naming_another_patient_is_404_and_stored_nothing_of_it(cast, client):
    items = [_item(0), _item(1, patient=str(cast.patient_b.pk)), _item(2, patient=str(cast.patient_a.pk))]
    response = _post(client, items, cast.device_token_a)
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 404, 201]
    assert "Bodil" not in response.content.decode()
    assert sorted(Reading.objects.values_list("client_id", flat=True)) == ["c0", "c2"]
    assert not Reading.objects.filter(patient=cast.patient_b).exists()


def test_item_naming_another_device_is_404(cast, client):
    results = _post(client, [_item(0, device=cast.device_b.pk)], cast.device_token_a).json()["results"]
    assert results[0]["status"] == 404
    assert not Reading.objects.exists()


def test_patient_batch_may_name_their_own_device_but_not_anothers(cast, client):
    client.force_login(cast.patient_a.user)
    response = client.post(URL, [_item(0, device=cast.device_a.pk), _item(1, device=cast.device_b.pk)],
                           content_type="application/json")
    assert [r["status"] for r in response.json()["results"]] == [201, 404]
    assert Reading.objects.get().device == cast.device_a


# --- evaluation ------------------------------------------------------------------------------

def test_evaluation_is_enqueued_once_per_batch_with_every_new_id(cast, client, django_capture_on_commit_callbacks):
    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            items = [_item(i) for i in range(50)]
            response = _post(client, [*items, items[0]], cast.device_token_a)
    assert response.status_code == 200
    assert len(callbacks) == 1
    send.assert_called_once()
    ((batch_ids,),), _ = send.call_args
    (pending,) = PendingEvaluation.objects.all()
    assert batch_ids == [pending.pk] and pending.size == 50
    assert sorted(pending.object_ids) == sorted(Reading.objects.values_list("id", flat=True))
    assert readings_unevaluated_ids() == set(Reading.objects.values_list("id", flat=True))


def test_a_resent_batch_enqueues_no_evaluation(cast, client, django_capture_on_commit_callbacks):
    item = _item(0)
    _post(client, [item], cast.device_token_a)
    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            assert _post(client, [item], cast.device_token_a).json()["results"][0]["status"] == 200
    send.assert_not_called()


def test_batch_evaluation_adds_both_low_readings_to_one_alert(cast, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, [_item(0, value=88), _item(1, value=97), _item(2, value=91)], cast.device_token_a)
    alert = Alert.objects.get()
    assert [f.evidence["value"] for f in alert.findings.order_by("id")] == ["88", "91"]
    assert alert.evidence["value"] == "91"  # the latest finding is what the worklist shows
    assert list(alert.events.order_by("id").values_list("kind", flat=True)) == ["raised", "evidence-added"]
    first, second = Reading.objects.filter(value__lt=92).order_by("id")
    assert alert.events.get(kind="raised").data == {"source": f"reading:{first.pk}"}
    assert alert.events.get(kind="evidence-added").data == {"sources": [f"reading:{second.pk}"], "severity": "red"}


def test_a_batch_adds_its_findings_to_an_open_alert_in_one_event(cast, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, [_item(0, value=88)], cast.device_token_a)
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, [_item(1, value=87), _item(2, value=97), _item(3, value=86)], cast.device_token_a)
    alert = Alert.objects.get()
    assert alert.findings.count() == 3
    added = alert.events.get(kind="evidence-added")
    low = [f"reading:{r.pk}" for r in Reading.objects.filter(client_id__in=["c1", "c3"]).order_by("id")]
    assert added.data == {"sources": low, "severity": "red"}
    assert not readings_unevaluated_ids()


def test_a_reading_marked_erroneous_before_its_batch_is_evaluated_is_left_out(cast, client):
    # the broker is slow: the batch is still pending when a clinician marks one reading wrong
    _post(client, [_item(0, value=88), _item(1, value=89)], cast.device_token_a)  # on_commit not run
    Reading.objects.filter(client_id="c0").update(erroneous_at=timezone.now(), erroneous_reason="cuff slipped")
    (batch,) = PendingEvaluation.objects.values_list("id", flat=True)
    assert readings_evaluate(batch_ids=[batch]) == 1
    assert [a.evidence["value"] for a in Alert.objects.all()] == ["89"]
    assert not readings_unevaluated_ids()  # the erroneous one is done with: it never runs a rule


def test_reading_outside_every_episode_is_evaluated_without_rules(cast, client, django_capture_on_commit_callbacks):
    # The episode starts 30 days ago; a reading from before it is judged by that day: no rule applies.
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, [_item(0, value=88, effective_at=_when(60 * 24 * 40))], cast.device_token_a)
    assert not readings_unevaluated_ids()
    assert not Alert.objects.exists()


def test_a_batch_across_the_episode_start_judges_each_reading_by_its_own_day(
        cast, client, django_capture_on_commit_callbacks):
    # The episode starts 30 days ago: in one batch, the reading from before it runs no rule.
    items = [_item(0, value=88, effective_at=_when(60 * 24 * 40)), _item(1, value=87, effective_at=_when(60))]
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, items, cast.device_token_a)
    assert not readings_unevaluated_ids()
    assert [f.evidence["value"] for f in Alert.objects.get().findings.all()] == ["87"]


# --- one evaluation task waiting at a time (ADR 0011) -----------------------------------------

@pytest.fixture
def broker(settings):
    """Tasks go to a broker, as in production (the autouse fixture puts eager back afterwards).
    The process's sender thread (ADR 0016, tested in test_evaluation_sender) is replaced by a
    call in the committing thread, so that a test sees what was sent as soon as it commits."""
    from types import SimpleNamespace

    from django.core.cache import cache

    from proplatform.celery import app

    app.conf.task_always_eager = False
    settings.ALERTS_COALESCE_SECONDS = 60
    cache.delete(dispatch.EVALUATION_QUEUED_KEY)
    forget_claims()
    with mock.patch.object(dispatch, "_sender", SimpleNamespace(put=dispatch.request)):
        yield
    cache.delete(dispatch.EVALUATION_QUEUED_KEY)
    forget_claims()


def forget_claims() -> None:
    """No earlier claim in this process (ADR 0013)."""

    dispatch._last_claim.at, dispatch._last_claim.readings = float("-inf"), 0


def _sent_batches(send: mock.Mock) -> list[list[int]]:
    return [call.args[0][0] for call in send.call_args_list]


def test_while_a_task_waits_in_the_queue_further_batches_send_none_and_it_claims_them(
        cast, client, broker, django_capture_on_commit_callbacks):
    from alerts.evaluation.tasks import evaluate as evaluate_readings

    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(0, value=88)], cast.device_token_a)
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(1, value=97), _item(2, value=86)], cast.device_token_a)
        first, second = PendingEvaluation.objects.order_by("id").values_list("id", flat=True)
        assert _sent_batches(send) == [[first]]  # the second rides on the waiting task

        assert evaluate_readings.run([first]) == 3  # the queued task claims both batches
        assert readings_unevaluated_ids() == set()
        assert Alert.objects.get().findings.count() == 2
        assert _sent_batches(send) == [[first]]  # nothing left waiting: no successor

        # the task took the mark when it started: the next batch sends a task again
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(3)], cast.device_token_a)
        (third,) = PendingEvaluation.objects.values_list("id", flat=True)
    assert _sent_batches(send) == [[first], [third]]


def test_a_task_whose_claim_was_full_queues_a_successor_for_the_rest(
        cast, client, broker, django_capture_on_commit_callbacks):
    from alerts.evaluation.tasks import evaluate as evaluate_readings

    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        for i in range(dispatch.COALESCE_MAX + 3):
            with django_capture_on_commit_callbacks(execute=True):
                _post(client, [_item(i)], cast.device_token_a)
        batches = list(PendingEvaluation.objects.order_by("id").values_list("id", flat=True))
        assert _sent_batches(send) == [[batches[0]]]

        assert evaluate_readings.run([batches[0]]) == 1 + dispatch.COALESCE_MAX
        assert _sent_batches(send) == [[batches[0]], []]  # a successor, with no batch of its own
        assert evaluate_readings.run([]) == 2
    assert readings_unevaluated_ids() == set()
    assert len(_sent_batches(send)) == 2


def test_a_batch_whose_task_could_not_be_sent_is_stored_and_the_next_batch_sends_one(
        cast, client, broker, django_capture_on_commit_callbacks):
    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async",
                    side_effect=[ConnectionError("broker down"), None]) as send:
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(client, [_item(0)], cast.device_token_a)
        assert response.status_code == 200  # committed: a 201 inside, the sweep will evaluate it
        assert response.json()["results"][0]["status"] == 201
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(1)], cast.device_token_a)
    # the failed send left no mark that a task waits: the second batch sent its own
    assert send.call_count == 2
    assert len(readings_unevaluated_ids()) == 2


def test_batches_left_to_the_sweep_are_always_sent_even_while_a_task_waits(
        cast, client, broker, django_capture_on_commit_callbacks):
    from alerts.evaluation.services import pending_sweep as readings_sweep_unevaluated

    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(0)], cast.device_token_a)
        (batch,) = PendingEvaluation.objects.values_list("id", flat=True)
        PendingEvaluation.objects.update(created_at=timezone.now() - timedelta(minutes=5),
                                         not_before=timezone.now() - timedelta(minutes=5))
        assert readings_sweep_unevaluated(older_than_seconds=30) == 1
    assert _sent_batches(send) == [[batch], [batch]]


def test_with_the_waiting_mark_switched_off_every_batch_sends_its_task(
        cast, client, broker, settings, django_capture_on_commit_callbacks):
    settings.EVALUATION_QUEUED_SECONDS = 0
    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        for i in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                _post(client, [_item(i)], cast.device_token_a)
    assert _sent_batches(send) == [[b] for b in PendingEvaluation.objects.order_by("id").values_list("id", flat=True)]


def test_batches_that_relied_on_the_waiting_task_are_claimed_however_long_it_waited(
        cast, client, broker, settings, django_capture_on_commit_callbacks):
    from alerts.evaluation.tasks import evaluate as evaluate_readings

    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send:
        for i in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                _post(client, [_item(i)], cast.device_token_a)
        first, second = PendingEvaluation.objects.order_by("id").values_list("id", flat=True)
        # the worker was down for longer than the coalescing window
        PendingEvaluation.objects.update(created_at=timezone.now() - timedelta(
            seconds=settings.ALERTS_COALESCE_SECONDS + 300))
        assert evaluate_readings.run([first]) == 2
    assert readings_unevaluated_ids() == set()
    assert _sent_batches(send) == [[first]]


def test_a_task_clears_the_waiting_mark_before_it_claims(cast, broker):
    from alerts.evaluation import services

    order = mock.Mock()
    order.left_waiting.return_value = False
    order.evaluate.return_value = 0
    with mock.patch.object(dispatch, "gather", order.gather), \
            mock.patch.object(dispatch, "taken", order.taken), \
            mock.patch.object(services, "readings_evaluate", order.evaluate), \
            mock.patch.object(dispatch, "left_waiting", order.left_waiting):
        evaluation_tasks.evaluate.run([1])
    # a batch committed after the claim started must find no mark and send its own task; one
    # committed while the task gathers finds the mark and relies on it (ADR 0013)
    assert [c[0] for c in order.mock_calls] == ["gather", "taken", "evaluate", "left_waiting"]


# --- gathering a bulk upload's batches (ADR 0013) ---------------------------------------------

def _bulk(client, token, start, n):
    """One request of n readings (below the SpO2 limit: every one is a finding)."""
    response = _post(client, [_item(start + i, value=88) for i in range(n)], token)
    assert response.status_code == 200


def test_after_claiming_a_bulk_backlog_the_next_task_gathers_before_it_claims(
        cast, client, broker, settings, django_capture_on_commit_callbacks):
    from alerts.evaluation import dispatch
    from alerts.evaluation import tasks as evaluation_tasks

    settings.EVALUATION_GATHER_MS = 150
    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send, \
            mock.patch.object(dispatch, "time") as clock:
        clock.monotonic.return_value = 1000.0
        with django_capture_on_commit_callbacks(execute=True):
            _bulk(client, cast.device_token_a, 0, dispatch.GATHER_AFTER_READINGS)
        assert evaluation_tasks.evaluate.run(_sent_batches(send)[0]) == dispatch.GATHER_AFTER_READINGS
        clock.sleep.assert_not_called()  # nothing was claimed before it: no waiting

        # 40 ms after that large claim the next batch's task waits the other 110 ms, and a batch
        # committed meanwhile rides on it (the mark stays set while it gathers)
        clock.monotonic.return_value = 1000.04
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(9000, value=87)], cast.device_token_a)
        next_task = _sent_batches(send)[1]

        def a_batch_arrives(seconds: float) -> None:
            if clock.sleep.call_count == 1:
                with django_capture_on_commit_callbacks(execute=True):
                    _post(client, [_item(9001, value=86)], cast.device_token_a)
            clock.monotonic.return_value += seconds

        clock.sleep.side_effect = a_batch_arrives
        assert evaluation_tasks.evaluate.run(next_task) == 2
        # in steps, looking each time whether a full claim waits (two batches do not make one)
        assert sum(c.args[0] for c in clock.sleep.call_args_list) == pytest.approx(0.11)
        assert clock.sleep.call_count == 5
    assert len(_sent_batches(send)) == 2  # the batch that arrived while it gathered sent none
    assert readings_unevaluated_ids() == set()


def test_a_task_does_not_gather_when_a_full_claim_already_waits(
        cast, client, broker, settings, django_capture_on_commit_callbacks):
    from alerts.evaluation import dispatch
    from alerts.evaluation import tasks as evaluation_tasks
    from alerts.evaluation.dispatch import CLAIM_MAX_BATCHES

    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send, \
            mock.patch.object(dispatch, "time") as clock:
        clock.monotonic.return_value = 1000.0
        with django_capture_on_commit_callbacks(execute=True):
            _bulk(client, cast.device_token_a, 0, dispatch.GATHER_AFTER_READINGS)
        evaluation_tasks.evaluate.run(_sent_batches(send)[0])
        # the worker is behind: a full claim's worth of batches came in meanwhile
        for i in range(CLAIM_MAX_BATCHES):
            with django_capture_on_commit_callbacks(execute=True):
                _post(client, [_item(9000 + i)], cast.device_token_a)
        assert evaluation_tasks.evaluate.run(_sent_batches(send)[1]) == CLAIM_MAX_BATCHES
        clock.sleep.assert_not_called()


def test_after_a_small_claim_or_with_gathering_off_the_next_task_claims_at_once(
        cast, client, broker, settings, django_capture_on_commit_callbacks):
    from alerts.evaluation import dispatch
    from alerts.evaluation import tasks as evaluation_tasks

    with mock.patch("alerts.evaluation.tasks.evaluate.apply_async") as send, \
            mock.patch.object(dispatch.time, "sleep") as sleep:
        # single readings, a live patient: the alert must not wait
        for i in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                _post(client, [_item(i, value=88)], cast.device_token_a)
            evaluation_tasks.evaluate.run(_sent_batches(send)[-1])
        sleep.assert_not_called()

        # a bulk claim, but gathering switched off
        settings.EVALUATION_GATHER_MS = 0
        with django_capture_on_commit_callbacks(execute=True):
            _bulk(client, cast.device_token_a, 100, dispatch.GATHER_AFTER_READINGS)
        evaluation_tasks.evaluate.run(_sent_batches(send)[-1])
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, [_item(9000, value=87)], cast.device_token_a)
        evaluation_tasks.evaluate.run(_sent_batches(send)[-1])
        sleep.assert_not_called()
    assert readings_unevaluated_ids() == set()


def test_a_bulk_claim_long_ago_or_tasks_in_process_do_not_gather(cast, broker):
    from proplatform.celery import app

    with mock.patch.object(dispatch, "time") as clock:
        clock.monotonic.return_value = 1000.0
        dispatch.taken()
        dispatch.claimed(readings=10_000)
        clock.monotonic.return_value = 1001.0  # a second later
        dispatch.gather()
        clock.sleep.assert_not_called()

        clock.monotonic.return_value = 1000.0  # just now, but tasks run in-process
        app.conf.task_always_eager = True
        dispatch.gather()
        clock.sleep.assert_not_called()
