"""The whole path with real processes: a reading goes in over HTTP, a Celery worker evaluates
it, the alert arrives over a websocket at the triage feed of the patient's team only, and an
acknowledgement reaches every open feed. In CI this runs against PostgreSQL, Redis, a real
`celery worker` and a real daphne server (PROPLATFORM_REQUIRE_PRODUCTION_SHAPE=1)."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from alerts.evaluation import PendingEvaluation
from alerts.models import Alert, AlertEvent
from monitoring.models import Reading, Source
from tests.factories import Cast
from tests.live import LiveStack, celery_sender

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@contextmanager
def _feed(stack: LiveStack, user: Any) -> Iterator[ClientConnection]:
    with connect(f"{stack.ws_url}/ws/alerts/", origin=Origin(stack.url),
                 additional_headers={"Cookie": _session_cookie(user)}, open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "snapshot"
        yield ws


def _next_alert(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "alert":
            return message["alert"]


def _no_alert_within(ws: ClientConnection, seconds: float) -> None:
    try:
        message = json.loads(ws.recv(timeout=seconds))
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message on another team's feed: {message}")


def _token(stack: LiveStack, username: str) -> str:
    status, body = stack.request("POST", "/api/v1/auth/token",
                                 {"username": username, "password": "test-pass-9876"})
    assert status == 201, body
    return body["token"]


def test_reading_raises_alert_pushed_to_own_team_and_acknowledgement_reaches_every_feed(
    live_stack: LiveStack, live_cast: Cast
) -> None:
    with (
        _feed(live_stack, live_cast.clinician_a) as feed_a1,
        _feed(live_stack, live_cast.clinician_a) as feed_a2,
        _feed(live_stack, live_cast.clinician_b) as feed_b,
    ):
        now = timezone.now().replace(microsecond=0)
        status, body = live_stack.request(
            "POST", "/api/v1/readings",
            {"measure": "spo2", "value": 87, "unit": "%", "effective_at": now.isoformat(), "client_id": "e2e-1"},
            {"Authorization": f"Bearer {live_cast.device_token_a}"},
        )
        assert status == 201, body

        alert = _next_alert(feed_a1)
        assert alert["severity"] == "red"
        assert alert["status"] == "open"
        assert alert["patient"]["id"] == str(live_cast.patient_a.pk)
        assert "87" in alert["reason"] and "92" in alert["reason"]
        assert _next_alert(feed_a2)["id"] == alert["id"]
        _no_alert_within(feed_b, 2)

        # The same reading sent again (a device retry) is stored once and raises nothing new.
        status, again = live_stack.request(
            "POST", "/api/v1/readings",
            {"measure": "spo2", "value": 87, "unit": "%", "effective_at": now.isoformat(), "client_id": "e2e-1"},
            {"Authorization": f"Bearer {live_cast.device_token_a}"},
        )
        assert (status, again["id"]) == (200, body["id"])

        token = _token(live_stack, "clinician-a")
        status, acked = live_stack.request("POST", f"/api/v1/alerts/{alert['id']}/acknowledge",
                                           headers={"Authorization": f"Bearer {token}"})
        assert status == 200, acked
        assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "clinician-a"
        for feed in (feed_a1, feed_a2):
            update = _next_alert(feed)
            assert (update["id"], update["status"]) == (alert["id"], "acknowledged")
        _no_alert_within(feed_b, 1)

        status, second = live_stack.request("POST", f"/api/v1/alerts/{alert['id']}/acknowledge",
                                             headers={"Authorization": f"Bearer {token}"})
        assert status == 409 and second["acknowledged_by"] == "clinician-a"
        assert Alert.objects.filter(patient=live_cast.patient_a).count() == 1
        assert AlertEvent.objects.filter(alert_id=alert["id"]).count() == 2  # raised, acknowledged
        assert Reading.objects.filter(patient=live_cast.patient_a).count() == 1


def test_reading_the_broker_never_delivered_is_found_by_the_sweep_and_alerted(
    live_stack: LiveStack, live_cast: Cast
) -> None:
    if not live_stack.production_shape:
        pytest.skip("the embedded shape evaluates in-process; there is no broker to lose work")
    # Written straight to the database, as if the web process committed and then the broker
    # lost the evaluation message.
    reading = Reading.objects.create(patient=live_cast.patient_a, measure="spo2", value=85, unit="%",
                                     effective_at=timezone.now() - timedelta(minutes=5), source=Source.DEVICE,
                                     received_at=timezone.now() - timedelta(minutes=2))
    PendingEvaluation.objects.create(source="reading", object_ids=[reading.pk], size=1,
                                     created_at=timezone.now() - timedelta(minutes=2),
                                     not_before=timezone.now() - timedelta(minutes=2))
    with _feed(live_stack, live_cast.clinician_a) as feed:
        celery_sender(live_stack).send_task("alerts.evaluation.sweep")
        alert = _next_alert(feed)
    assert alert["severity"] == "red" and "85" in alert["reason"]


def test_websocket_refuses_patients_and_anonymous_visitors(live_stack: LiveStack, live_cast: Cast) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    for cookie in ("", _session_cookie(live_cast.patient_a.user), _session_cookie(live_cast.quality)):
        with pytest.raises((ConnectionClosed, InvalidStatus)):
            ws = connect(f"{live_stack.ws_url}/ws/alerts/", origin=Origin(live_stack.url),
                         additional_headers={"Cookie": cookie}, open_timeout=10)
            ws.recv(timeout=5)


def test_websocket_from_a_foreign_origin_is_refused(live_stack: LiveStack, live_cast: Cast) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    with pytest.raises((ConnectionClosed, InvalidStatus)):
        ws = connect(f"{live_stack.ws_url}/ws/alerts/", origin=Origin("http://evil.example"),
                     additional_headers={"Cookie": _session_cookie(live_cast.clinician_a)}, open_timeout=10)
        ws.recv(timeout=5)


def test_every_live_push_of_an_alert_is_audited_as_a_read_by_that_clinician(
    live_stack: LiveStack, live_cast: Cast
) -> None:
    from audit.models import AuditEvent

    with _feed(live_stack, live_cast.clinician_a) as feed:
        status, _ = live_stack.request(
            "POST", "/api/v1/readings",
            {"measure": "spo2", "value": 86, "unit": "%", "effective_at": timezone.now().isoformat()},
            {"Authorization": f"Bearer {live_cast.device_token_a}"})
        assert status == 201
        alert = _next_alert(feed)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if AuditEvent.objects.filter(user=live_cast.clinician_a, resource=f"Alert/{alert['id']} (live push)",
                                     patient_ref=live_cast.patient_a.pk, action="read").exists():
            return
        time.sleep(0.2)
    raise AssertionError("the live push left no audit row")


def test_an_idle_feed_stays_open_for_30_seconds_with_heartbeats_and_then_receives_a_push(
    live_stack: LiveStack, live_cast: Cast
) -> None:
    # redis-py's 5 s socket timeout once equalled channels_redis's 5 s blocking pop: an idle
    # consumer died every ~5 s (close 1006) and the page kept reconnecting.
    with _feed(live_stack, live_cast.clinician_a) as feed:
        idle_until = time.monotonic() + 30
        heard = []
        while (left := idle_until - time.monotonic()) > 0:
            try:
                heard.append(json.loads(feed.recv(timeout=left))["type"])
            except TimeoutError:
                break
        assert heard and set(heard) == {"heartbeat"}, heard
        now = timezone.now().replace(microsecond=0)
        status, body = live_stack.request(
            "POST", "/api/v1/readings",
            {"measure": "spo2", "value": 86, "unit": "%", "effective_at": now.isoformat(), "client_id": "e2e-idle"},
            {"Authorization": f"Bearer {live_cast.device_token_a}"},
        )
        assert status == 201, body
        assert _next_alert(feed)["patient"]["id"] == str(live_cast.patient_a.pk)
