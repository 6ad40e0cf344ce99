"""Who may see which patient: the whole cast against the patient page, FHIR Patient read, the
alert worklist and patients.access.patients_for itself."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from accounts.models import ApiToken, Role
from alerts.models import Alert, Rule, Status
from monitoring.models import Reading, Source
from patients.access import can_see_identifiers, patients_for, teams_for
from patients.models import TreatmentEpisode
from tests.factories import evaluate, make_user

pytestmark = pytest.mark.django_db


def _who(cast, name):
    return {
        "patient_a": cast.patient_a.user,
        "patient_b": cast.patient_b.user,
        "clinician_a": cast.clinician_a,
        "clinician_b": cast.clinician_b,
        "quality": cast.quality,
        "admin": cast.admin,
    }[name]


def _spo2_alert(patient, value="88"):
    reading = Reading.objects.create(patient=patient, measure="spo2", value=Decimal(value), unit="%",
                                     effective_at=timezone.now() - timedelta(minutes=5),
                                     source=Source.DEVICE)
    evaluate([reading.pk])
    return patient.alerts.get()


# --- the patient page ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("who", "whose", "expected"),
    [
        ("clinician_a", "patient_a", 200),
        ("clinician_a", "patient_b", 404),
        ("clinician_b", "patient_b", 200),
        ("clinician_b", "patient_a", 404),
        ("admin", "patient_a", 200),
        ("admin", "patient_b", 200),
        ("patient_a", "patient_a", 403),
        ("patient_a", "patient_b", 403),
        ("quality", "patient_a", 403),
    ],
)
def test_patient_page_answers_each_role_as_the_access_rules_say(cast, client, who, whose, expected):
    client.force_login(_who(cast, who))
    patient = getattr(cast, whose)
    response = client.get(f"/patients/{patient.pk}/")
    assert response.status_code == expected
    if expected == 200:
        assert patient.given_name in response.content.decode()


def test_clinician_on_other_team_gets_404_for_patient_page(cast, client):
    client.force_login(cast.clinician_a)
    response = client.get(f"/patients/{cast.patient_b.pk}/")
    assert response.status_code == 404
    assert "Bodil" not in response.content.decode()


def test_anonymous_visitor_is_sent_to_login_from_the_patient_page(cast, client):
    response = client.get(f"/patients/{cast.patient_a.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_clinician_on_both_teams_sees_both_patients_pages(cast, client):
    cast.team_b.members.add(cast.clinician_a)
    client.force_login(cast.clinician_a)
    assert client.get(f"/patients/{cast.patient_a.pk}/").status_code == 200
    assert client.get(f"/patients/{cast.patient_b.pk}/").status_code == 200


# --- FHIR Patient read -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("who", "whose", "expected"),
    [
        ("clinician_a", "patient_a", 200),
        ("clinician_a", "patient_b", 404),
        ("clinician_b", "patient_b", 200),
        ("clinician_b", "patient_a", 404),
        ("admin", "patient_a", 200),
        ("admin", "patient_b", 200),
        ("patient_a", "patient_a", 200),
        ("patient_a", "patient_b", 404),
        ("patient_b", "patient_a", 404),
        ("quality", "patient_a", 403),
        ("quality", "patient_b", 403),
    ],
)
def test_fhir_patient_read_answers_each_role_as_the_access_rules_say(cast, client, who, whose, expected):
    client.force_login(_who(cast, who))
    patient = getattr(cast, whose)
    response = client.get(f"/fhir/Patient/{patient.pk}")
    assert response.status_code == expected
    body = response.json()
    if expected == 200:
        assert body["resourceType"] == "Patient"
        assert body["id"] == str(patient.pk)
    else:
        assert body["resourceType"] == "OperationOutcome"


def test_fhir_patient_read_with_a_bearer_token_follows_the_same_rules(cast, client):
    _, raw = ApiToken.issue(cast.clinician_a)
    auth = {"Authorization": f"Bearer {raw}"}
    assert client.get(f"/fhir/Patient/{cast.patient_a.pk}", headers=auth).status_code == 200
    assert client.get(f"/fhir/Patient/{cast.patient_b.pk}", headers=auth).status_code == 404


# --- quality staff ---------------------------------------------------------------------------

def test_quality_staff_see_no_identifiers_on_any_page_or_endpoint(cast, client):
    for patient in (cast.patient_a, cast.patient_b):
        _spo2_alert(patient)
    client.force_login(cast.quality)
    responses = {
        "/quality/": client.get("/quality/"),
        "/triage/": client.get("/triage/"),
        "/api/v1/alerts": client.get("/api/v1/alerts"),
        "/me/": client.get("/me/"),
        "page A": client.get(f"/patients/{cast.patient_a.pk}/"),
        "fhir A": client.get(f"/fhir/Patient/{cast.patient_a.pk}"),
        "fhir B": client.get(f"/fhir/Patient/{cast.patient_b.pk}"),
    }
    assert responses["/quality/"].status_code == 200
    assert responses["fhir A"].status_code == 403
    assert responses["fhir B"].status_code == 403
    assert responses["page A"].status_code == 403
    assert responses["/api/v1/alerts"].status_code == 403
    identifiers = []
    for p in (cast.patient_a, cast.patient_b):
        identifiers += [p.cpr, p.cpr.replace("-", ""), p.given_name, p.phone, str(p.pk)]
    for name, response in responses.items():
        body = response.content.decode()
        for identifier in identifiers:
            assert identifier not in body, f"{identifier!r} shown to quality staff on {name}"


def test_quality_overview_shows_small_counts_suppressed(cast, client):
    client.force_login(cast.quality)
    body = client.get("/quality/").content.decode()
    # one patient per programme: shown as <5, never as 1
    assert "&lt;5" in body
    assert "<td>1</td>" not in body


# --- the alert worklist ----------------------------------------------------------------------

def test_alert_list_holds_only_alerts_of_the_clinicians_own_teams(cast, client):
    alert_a = _spo2_alert(cast.patient_a)
    alert_b = _spo2_alert(cast.patient_b)
    client.force_login(cast.clinician_a)
    response = client.get("/api/v1/alerts")
    assert response.status_code == 200
    assert [a["id"] for a in response.json()] == [alert_a.pk]
    assert response.json()[0]["patient"]["id"] == str(cast.patient_a.pk)

    client.force_login(cast.clinician_b)
    assert [a["id"] for a in client.get("/api/v1/alerts").json()] == [alert_b.pk]


def test_alert_list_for_admin_holds_every_teams_alerts(cast, client):
    alert_a = _spo2_alert(cast.patient_a)
    alert_b = _spo2_alert(cast.patient_b)
    client.force_login(cast.admin)
    ids = {a["id"] for a in client.get("/api/v1/alerts").json()}
    assert ids == {alert_a.pk, alert_b.pk}


def test_alert_list_lists_open_red_before_open_yellow_before_acknowledged(cast, client):
    red = _spo2_alert(cast.patient_a)
    yellow_rule = Rule.objects.get(program=cast.program_a, kind="answer")
    yellow = Alert.objects.create(patient=cast.patient_a, rule=yellow_rule, rule_version=1,
                                  severity="yellow", reason="r", evidence={}, source_key="response:1",
                                  raised_at=timezone.now() - timedelta(hours=2))
    # One unresolved alert per patient and rule: the acknowledged one is another rule's.
    other_rule = Rule.objects.create(program=cast.program_a, kind="threshold", name="Pulse", severity="red",
                                     params={"measure": "heart-rate", "high": 120})
    acked = Alert.objects.create(patient=cast.patient_a, rule=other_rule, rule_version=1, severity="red",
                                 reason="r", evidence={}, source_key="reading:999",
                                 status=Status.ACKNOWLEDGED, raised_at=timezone.now() - timedelta(hours=3))
    client.force_login(cast.clinician_a)
    ids = [a["id"] for a in client.get("/api/v1/alerts").json()]
    assert ids == [red.pk, yellow.pk, acked.pk]


@pytest.mark.parametrize("who", ["patient_a", "quality"])
def test_alert_list_refuses_people_who_do_not_triage(cast, client, who):
    _spo2_alert(cast.patient_a)
    client.force_login(_who(cast, who))
    response = client.get("/api/v1/alerts")
    assert response.status_code == 403
    assert "Alma" not in response.content.decode()


def test_alert_list_refuses_anonymous_callers_with_401(cast, client):
    response = client.get("/api/v1/alerts")
    assert response.status_code == 401


# --- patients_for and friends ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("patient_a", {"patient_a"}),
        ("patient_b", {"patient_b"}),
        ("clinician_a", {"patient_a"}),
        ("clinician_b", {"patient_b"}),
        ("admin", {"patient_a", "patient_b"}),
        ("quality", set()),
    ],
)
def test_patients_for_gives_each_role_exactly_its_patients(cast, who, expected):
    got = set(patients_for(_who(cast, who)).values_list("pk", flat=True))
    assert got == {getattr(cast, name).pk for name in expected}


def test_patients_for_gives_anonymous_and_missing_users_nobody(cast):
    assert not patients_for(AnonymousUser()).exists()
    assert not patients_for(None).exists()


def test_patients_for_gives_a_deactivated_clinician_nobody(cast):
    cast.clinician_a.is_active = False
    cast.clinician_a.save()
    assert not patients_for(cast.clinician_a).exists()


def test_patients_for_gives_a_clinician_without_a_team_nobody(cast):
    assert not patients_for(make_user("clinician-lonely", Role.CLINICIAN)).exists()


def test_patients_for_lists_a_patient_once_even_with_two_episodes_on_the_clinicians_team(cast):
    TreatmentEpisode.objects.create(patient=cast.patient_a, program=cast.program_b, care_team=cast.team_a,
                                    condition_code="DI50", treatment_start=timezone.localdate())
    assert list(patients_for(cast.clinician_a)) == [cast.patient_a]


def test_patients_for_follows_team_membership_changes(cast):
    cast.team_b.members.add(cast.clinician_a)
    assert set(patients_for(cast.clinician_a)) == {cast.patient_a, cast.patient_b}
    cast.team_a.members.remove(cast.clinician_a)
    assert set(patients_for(cast.clinician_a)) == {cast.patient_b}


@pytest.mark.parametrize(("ended_days_ago", "sees"), [(0, True), (89, True), (90, True), (91, False), (400, False)])
def test_a_care_team_keeps_access_for_the_grace_period_after_the_episode_ended_and_then_loses_it(
        cast, client, ended_days_ago, sees):
    TreatmentEpisode.objects.filter(patient=cast.patient_a).update(
        end=timezone.localdate() - timedelta(days=ended_days_ago))
    assert patients_for(cast.clinician_a).filter(pk=cast.patient_a.pk).exists() is sees
    client.force_login(cast.clinician_a)
    assert client.get(f"/patients/{cast.patient_a.pk}/").status_code == (200 if sees else 404)
    assert patients_for(cast.admin).filter(pk=cast.patient_a.pk).exists()  # the record is still there


def test_the_grace_period_is_configurable_and_a_running_episode_on_the_team_keeps_access(cast, settings):
    settings.CARE_ACCESS_GRACE_DAYS = 7
    episode = TreatmentEpisode.objects.get(patient=cast.patient_a)
    TreatmentEpisode.objects.filter(pk=episode.pk).update(end=timezone.localdate() - timedelta(days=8))
    assert not patients_for(cast.clinician_a).filter(pk=cast.patient_a.pk).exists()
    TreatmentEpisode.objects.create(patient=cast.patient_a, program=episode.program, care_team=episode.care_team,
                                    condition_code="DC34", treatment_start=timezone.localdate())
    assert list(patients_for(cast.clinician_a).filter(pk=cast.patient_a.pk)) == [cast.patient_a]


def test_teams_for_gives_clinicians_their_teams_and_others_none_or_all(cast):
    assert list(teams_for(cast.clinician_a)) == [cast.team_a]
    assert set(teams_for(cast.admin)) == {cast.team_a, cast.team_b}
    assert not teams_for(cast.quality).exists()
    assert not teams_for(cast.patient_a.user).exists()


def test_only_quality_staff_are_denied_identifiers(cast):
    assert can_see_identifiers(cast.clinician_a)
    assert can_see_identifiers(cast.admin)
    assert can_see_identifiers(cast.patient_a.user)
    assert not can_see_identifiers(cast.quality)
    assert not can_see_identifiers(AnonymousUser())


def test_quality_overview_leaves_out_patients_who_withdrew_from_secondary_use(cast, client):
    from patients.models import Patient

    Patient.objects.filter(pk__in=[cast.patient_a.pk, cast.patient_b.pk]).update(
        secondary_use_withdrawn_at=timezone.now())
    client.force_login(cast.quality)
    body = client.get("/quality/").content.decode()
    assert "&lt;5" not in body  # nobody left to count
