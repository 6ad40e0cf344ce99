"""The audit trail: every read of patient data leaves a row naming who, as what, which patient,
what happened and the request id the caller saw; rows cannot be changed afterwards."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from audit.models import Action, AppendOnlyError, AuditEvent, Outcome
from audit.services import audit_record

pytestmark = pytest.mark.django_db

CLIENT_IP = "203.0.113.7"


def _only_new_row(before: int) -> AuditEvent:
    rows = list(AuditEvent.objects.order_by("id")[before:])
    assert len(rows) == 1, [(r.action, r.resource, r.outcome) for r in rows]
    return rows[0]


def _assert_row(row, response, *, user, patient, action, outcome):
    assert row.user_id == user.pk
    assert row.username == user.username
    assert row.role == user.role
    assert row.patient_ref == (patient.pk if patient is not None else None)
    assert row.action == action
    assert row.outcome == outcome
    assert row.request_id and row.request_id == response["X-Request-ID"]
    assert row.client_ip == CLIENT_IP


READS = [
    # (who, path template, whose, status, outcome)
    ("clinician_a", "/patients/{id}/", "patient_a", 200, Outcome.ALLOWED),
    ("clinician_a", "/patients/{id}/", "patient_b", 404, Outcome.DENIED),
    ("admin", "/patients/{id}/", "patient_b", 200, Outcome.ALLOWED),
    ("patient_a", "/patients/{id}/", "patient_a", 403, Outcome.DENIED),
    ("quality", "/patients/{id}/", "patient_a", 403, Outcome.DENIED),
    ("clinician_a", "/fhir/Patient/{id}", "patient_a", 200, Outcome.ALLOWED),
    ("clinician_a", "/fhir/Patient/{id}", "patient_b", 404, Outcome.DENIED),
    ("patient_a", "/fhir/Patient/{id}", "patient_a", 200, Outcome.ALLOWED),
    ("patient_a", "/fhir/Patient/{id}", "patient_b", 404, Outcome.DENIED),
    ("admin", "/fhir/Patient/{id}", "patient_a", 200, Outcome.ALLOWED),
    ("quality", "/fhir/Patient/{id}", "patient_a", 403, Outcome.DENIED),
]


@pytest.mark.parametrize(("who", "path", "whose", "status", "outcome"), READS)
def test_every_read_of_a_patient_writes_one_audit_row(cast, client, who, path, whose, status, outcome):
    user = cast.patient_a.user if who == "patient_a" else getattr(cast, who)
    patient = getattr(cast, whose)
    client.force_login(user)
    before = AuditEvent.objects.count()
    response = client.get(path.format(id=patient.pk), REMOTE_ADDR=CLIENT_IP)
    assert response.status_code == status
    row = _only_new_row(before)
    _assert_row(row, response, user=user, patient=patient, action=Action.READ, outcome=outcome)
    assert str(patient.pk) in row.resource


def test_alert_list_writes_a_search_row(cast, client):
    client.force_login(cast.clinician_a)
    before = AuditEvent.objects.count()
    response = client.get("/api/v1/alerts", REMOTE_ADDR=CLIENT_IP)
    assert response.status_code == 200
    row = _only_new_row(before)
    _assert_row(row, response, user=cast.clinician_a, patient=None, action=Action.SEARCH,
                outcome=Outcome.ALLOWED)


def test_patients_own_page_writes_a_read_row_for_their_record(cast, client):
    user = cast.patient_a.user
    client.force_login(user)
    before = AuditEvent.objects.count()
    response = client.get("/me/", REMOTE_ADDR=CLIENT_IP)
    assert response.status_code == 200
    _assert_row(_only_new_row(before), response, user=user, patient=cast.patient_a, action=Action.READ,
                outcome=Outcome.ALLOWED)


def test_fhir_read_with_bearer_token_is_audited_with_the_tokens_user(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    before = AuditEvent.objects.count()
    response = client.get(f"/fhir/Patient/{cast.patient_a.pk}", REMOTE_ADDR=CLIENT_IP,
                          headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    _assert_row(_only_new_row(before), response, user=cast.clinician_a, patient=cast.patient_a,
                action=Action.READ, outcome=Outcome.ALLOWED)


def test_fhir_read_of_a_garbage_id_is_audited_as_denied(cast, client):
    client.force_login(cast.clinician_a)
    before = AuditEvent.objects.count()
    response = client.get("/fhir/Patient/not-a-uuid", REMOTE_ADDR=CLIENT_IP)
    assert response.status_code == 404
    row = _only_new_row(before)
    assert row.outcome == Outcome.DENIED
    assert row.patient_ref is None
    assert row.request_id == response["X-Request-ID"]


def test_a_safe_caller_supplied_request_id_is_echoed_and_recorded(cast, client):
    client.force_login(cast.clinician_a)
    response = client.get(f"/patients/{cast.patient_a.pk}/", headers={"X-Request-ID": "trace-42.a_b"})
    assert response["X-Request-ID"] == "trace-42.a_b"
    assert AuditEvent.objects.latest("id").request_id == "trace-42.a_b"


def test_an_unsafe_caller_supplied_request_id_is_replaced(cast, client):
    client.force_login(cast.clinician_a)
    response = client.get(f"/patients/{cast.patient_a.pk}/",
                          headers={"X-Request-ID": "evil\nINFO forged log line"})
    assert response["X-Request-ID"] != "evil\nINFO forged log line"
    assert len(response["X-Request-ID"]) == 32
    assert AuditEvent.objects.latest("id").request_id == response["X-Request-ID"]


def test_each_request_gets_its_own_request_id(cast, client):
    client.force_login(cast.clinician_a)
    first = client.get(f"/patients/{cast.patient_a.pk}/")["X-Request-ID"]
    second = client.get(f"/patients/{cast.patient_a.pk}/")["X-Request-ID"]
    assert first != second
    assert set(AuditEvent.objects.values_list("request_id", flat=True)) == {first, second}


def test_audit_rows_hold_no_cpr_number(cast, client):
    client.force_login(cast.clinician_a)
    client.get(f"/patients/{cast.patient_a.pk}/")
    client.get(f"/fhir/Patient/{cast.patient_a.pk}")
    for row in AuditEvent.objects.all():
        for value in (row.resource, row.username):
            assert cast.patient_a.cpr not in value
            assert cast.patient_a.cpr.replace("-", "") not in value


# --- append-only -----------------------------------------------------------------------------

def test_audit_row_refuses_to_be_changed_through_the_model(cast):
    row = audit_record(user=cast.clinician_a, action=Action.READ, resource="Patient/x",
                       patient_id=cast.patient_a.pk)
    row.outcome = Outcome.DENIED
    with pytest.raises(AppendOnlyError):
        row.save()
    row.refresh_from_db()
    assert row.outcome == Outcome.ALLOWED


def test_audit_row_refuses_to_be_deleted_through_the_model(cast):
    row = audit_record(user=cast.clinician_a, action=Action.READ, resource="Patient/x",
                       patient_id=cast.patient_a.pk)
    with pytest.raises(AppendOnlyError):
        row.delete()
    assert AuditEvent.objects.filter(pk=row.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the append-only trigger exists on PostgreSQL only (migration audit 0002)")
@pytest.mark.parametrize("sql", [
    "UPDATE audit_auditevent SET outcome = 'denied' WHERE id = %s",
    "DELETE FROM audit_auditevent WHERE id = %s",
])
def test_database_trigger_refuses_raw_sql_update_and_delete_of_audit_rows(cast, sql):
    row = audit_record(user=cast.clinician_a, action=Action.READ, resource="Patient/x",
                       patient_id=cast.patient_a.pk)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [row.pk])
    row.refresh_from_db()
    assert row.outcome == Outcome.ALLOWED


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the append-only trigger exists on PostgreSQL only (migration audit 0002)")
def test_database_trigger_refuses_bulk_queryset_update_and_delete_of_audit_rows(cast):
    audit_record(user=cast.clinician_a, action=Action.READ, resource="Patient/x")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.update(outcome=Outcome.DENIED)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(outcome=Outcome.ALLOWED).count() == AuditEvent.objects.count() > 0


def test_behind_the_tls_proxy_the_audited_address_is_the_one_the_proxy_wrote(rf, settings):
    from audit.services import client_ip

    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    settings.BEHIND_TLS_PROXY = True
    assert client_ip(request) == "203.0.113.9"  # not the client-supplied 6.6.6.6
    settings.BEHIND_TLS_PROXY = False
    assert client_ip(request) == "10.0.0.2"


def test_a_cpr_number_put_where_an_id_belongs_never_reaches_the_audit_trail_or_the_log(cast):
    import logging

    from django.conf import settings
    from django.test import Client

    from proplatform.privacy import RedactCprLogFilter

    client = Client()
    client.force_login(cast.clinician_a)
    assert client.get("/fhir/Patient/010150-1111").status_code == 404
    rows = list(AuditEvent.objects.filter(user=cast.clinician_a).values_list("resource", flat=True))
    assert rows and not any("0101501111" in r or "010150-1111" in r for r in rows)
    # Every log line passes the redacting filter (e.g. Django's "Not Found: <path>").
    assert "redact_cpr" in settings.LOGGING["handlers"]["console"]["filters"]
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s",
                               ("/fhir/Patient/0101501111",), None)
    RedactCprLogFilter().filter(record)
    assert record.getMessage() == "Not Found: /fhir/Patient/[cpr]"
    # ids that merely contain digits are left alone
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Reading %s of %s",
                               ("12345678901", "0b1c2d3e-0101-5011-1100-aaaaaaaaaaaa"), None)
    RedactCprLogFilter().filter(record)
    assert record.getMessage() == "Reading 12345678901 of 0b1c2d3e-0101-5011-1100-aaaaaaaaaaaa"


def test_a_cpr_number_in_any_argument_a_traceback_or_written_with_a_space_is_redacted_from_logs():
    import io
    import logging

    from proplatform.privacy import RedactCprLogFilter, redact_cpr

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactCprLogFilter())
    log = logging.getLogger("proplatform.test-redaction")
    log.addHandler(handler)
    try:
        log.warning("failed: %s", ValueError("Key (cpr)=(010150-1111) already exists"))
        log.warning("args %s", ["0101501111"])
        log.warning("ids %(who)s", {"who": 101501111})  # not a string, not a CPR number: kept
        try:
            raise ValueError("duplicate key value: Key (cpr)=(010150-1111)")
        except ValueError:
            log.exception("export failed")
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "1111" not in written.replace("101501111", ""), written
    assert written.count("[cpr]") >= 3 and "ids 101501111" in written
    assert redact_cpr("Patient/010150 1111") == "Patient/[cpr]"


# --- the admin: patient data read there is audited like anywhere else -------------------------

def test_admin_pages_showing_patient_data_leave_one_audit_row_per_patient_shown(cast):
    from decimal import Decimal

    from monitoring.models import Reading, Source
    from tests.factories import evaluate

    readings = [Reading.objects.create(patient=patient, measure="spo2", value=Decimal("88"), unit="%",
                                       effective_at=timezone.now() - timedelta(hours=1), source=Source.DEVICE)
                for patient in (cast.patient_a, cast.patient_a, cast.patient_b)]
    evaluate([r.pk for r in readings])
    client = Client()
    client.force_login(cast.admin)
    a, b = cast.patient_a.pk, cast.patient_b.pk
    pages = {
        "/admin/monitoring/reading/": {a, b},
        f"/admin/monitoring/reading/{readings[0].pk}/change/": {a},
        "/admin/alerts/alert/": {a, b},
        "/admin/patients/patient/": {a, b},
        f"/admin/patients/patient/{a}/history/": {a},
        f"/admin/patients/patient/{a}/delete/": {a},
        f"/admin/patients/patient/{b}/change/": {b},
        f"/admin/monitoring/device/{cast.device_a.pk}/change/": {a},
    }
    for url, patients in pages.items():
        before = set(AuditEvent.objects.values_list("pk", flat=True))
        assert client.get(url).status_code == 200, url
        rows = AuditEvent.objects.exclude(pk__in=before)
        assert {row.patient_ref for row in rows} == patients, url
        assert rows.count() == len(patients), url  # one per patient, not one per row shown
        assert all(row.username == "admin" and row.action == Action.READ and "(admin)" in row.resource
                   for row in rows), url


def test_the_admin_cannot_move_a_device_to_another_patient_by_editing_it(cast):
    client = Client()
    client.force_login(cast.admin)
    html = client.get(f"/admin/monitoring/device/{cast.device_a.pk}/change/").content.decode()
    assert 'name="patient"' not in html and 'name="lent_from"' not in html and 'name="lent_to"' not in html
    client.post(f"/admin/monitoring/device/{cast.device_a.pk}/change/", {
        "kind": cast.device_a.kind, "model": "", "serial": cast.device_a.serial,
        "patient": str(cast.patient_b.pk), "lent_from": timezone.localdate().isoformat(), "lent_to": "",
        "tokens-TOTAL_FORMS": "0", "tokens-INITIAL_FORMS": "0", "tokens-MIN_NUM_FORMS": "0",
        "tokens-MAX_NUM_FORMS": "1000"})
    cast.device_a.refresh_from_db()
    assert cast.device_a.patient_id == cast.patient_a.pk


# --- API answers that carry patient data are reads --------------------------------------------

def _alert(cast, value: str):
    from decimal import Decimal

    from alerts.models import Alert
    from monitoring.models import Reading, Source
    from tests.factories import evaluate

    reading = Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal(value), unit="%",
                                     effective_at=timezone.now() - timedelta(minutes=5), source=Source.DEVICE)
    evaluate([reading.pk])
    return Alert.objects.get(patient=cast.patient_a)


def _new_rows(before: set[int]):
    return list(AuditEvent.objects.exclude(pk__in=before).order_by("pk"))


def test_a_refused_bulk_acknowledge_that_answers_with_the_alert_is_an_audited_read(cast):
    alert = _alert(cast, "85")  # red: refused in bulk, answered with the alert
    client = Client()
    client.force_login(cast.clinician_a)
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    body = client.post("/api/v1/alerts/acknowledge", {"ids": [alert.pk]}, content_type="application/json").json()
    assert body["results"][0]["acknowledged"] is False and body["results"][0]["alert"]["id"] == alert.pk
    [row] = _new_rows(before)
    assert (row.action, row.patient_ref, row.username) == (Action.READ, cast.patient_a.pk, "clinician-a")


def test_a_409_that_answers_with_the_alert_is_an_audited_read(cast):
    alert = _alert(cast, "85")
    client = Client()
    client.force_login(cast.clinician_a)
    assert client.post(f"/api/v1/alerts/{alert.pk}/acknowledge").status_code == 200
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    again = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert again.status_code == 409 and again.json()["id"] == alert.pk
    [row] = _new_rows(before)
    assert (row.action, row.patient_ref, row.resource) == (
        Action.READ, cast.patient_a.pk, f"Alert/{alert.pk} (conflict)")


def test_a_device_token_cannot_search_observations_and_the_refusal_is_audited(cast):
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    response = Client(HTTP_AUTHORIZATION=f"Bearer {cast.device_token_a}").get(
        f"/fhir/Observation?patient={cast.patient_a.pk}")
    assert response.status_code == 403 and response.json()["resourceType"] == "OperationOutcome"
    [row] = _new_rows(before)
    assert (row.outcome, row.user_id, row.username, row.role) == (
        Outcome.DENIED, None, f"device:{cast.device_a.pk}", "device")


@pytest.mark.parametrize("path", ["/fhir/Observation", "/fhir"])
def test_a_patient_storing_observations_through_fhir_is_audited_as_through_rest(cast, path):
    from tests.factories import vital_signs_observation

    observation = vital_signs_observation(cast.patient_a, code="59408-5", value=95, unit="%")
    entry = {"resource": observation, "request": {"method": "POST", "url": "Observation"}}
    body = observation if path.endswith("Observation") else {"resourceType": "Bundle", "type": "transaction",
                                                             "entry": [entry]}
    client = Client()
    client.force_login(cast.patient_a.user)
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    assert client.post(path, body, content_type="application/fhir+json").status_code in (200, 201)
    from monitoring.models import Reading

    [row] = _new_rows(before)
    assert (row.action, row.patient_ref, row.resource) == (
        Action.CREATE, cast.patient_a.pk, f"Reading/{Reading.objects.get().pk}")


def test_a_page_refused_for_the_callers_role_leaves_a_denied_audit_row(cast):
    client = Client()
    client.force_login(cast.quality)
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    url = f"/patients/{cast.patient_a.pk}/pauses/new/"
    assert client.get(url).status_code == 403
    [row] = AuditEvent.objects.exclude(pk__in=before)
    assert (row.username, row.outcome, row.resource, row.patient_ref) == (
        "quality", Outcome.DENIED, url, cast.patient_a.pk)


def test_the_redacting_filter_never_raises_into_the_code_that_logs():
    import logging

    from proplatform.privacy import RedactCprLogFilter

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("cannot say")

        __repr__ = __str__

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "value %s and %d", (Broken(), "010150-1111"), None)
    assert RedactCprLogFilter().filter(record) is True
    assert "<Broken>" in record.getMessage() and "1111" not in record.getMessage()
