"""Pseudonymised exports: no CPR, names, phone numbers, addresses or free text in any NDJSON
line; withdrawn patients left out; pseudonyms stable per key and different across keys;
identified exports only for the roles allowed, with an audited purpose."""

from datetime import date, timedelta

import orjson
import pytest

from audit.models import Action, AuditEvent
from exports.models import ExportJob
from exports.privacy import Pseudonymiser, items_without_free_text, pseudonym, pseudonym_key
from exports.services import job_dir
from interop.mapping import CPR_SYSTEM
from tests.export_data import FREE_TEXT, add_outcome_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_settings(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.EXPORT_PSEUDONYM_KEY = "key-of-project-one"
    settings.EXPORT_MAX_CONCURRENT = 5


def _export(client, capture, user, data=None, path="/fhir/$export"):
    client.force_login(user)
    with capture(execute=True):
        response = client.get(path, data or {}, HTTP_PREFER="respond-async")
    assert response.status_code == 202, response.content
    manifest = client.get(response["Content-Location"]).json()
    job = ExportJob.objects.order_by("-created_at").first()
    return manifest, {o["type"]: (job_dir(job) / o["url"].rsplit("/", 1)[1]).read_bytes() for o in manifest["output"]}


def _identifying_strings(*patients) -> list[str]:
    found = []
    for p in patients:
        found += [p.cpr, p.cpr.replace("-", ""), p.given_name, p.family_name, p.phone,
                  p.phone.replace(" ", ""), p.birth_date.isoformat(), str(p.pk)]
    return found + [FREE_TEXT, "Gurli", "99887766", CPR_SYSTEM, "OX-A", "OX-B",
                    "Unusual value", "client-identifier"]


def test_no_cpr_name_phone_birth_date_free_text_or_real_id_in_any_pseudonymised_ndjson_line(
        cast, client, django_capture_on_commit_callbacks):
    patient_c = add_outcome_data(cast)
    manifest, files = _export(client, django_capture_on_commit_callbacks, cast.quality)
    assert set(files) == {"Patient", "EpisodeOfCare", "Device", "QuestionnaireResponse", "Observation"}
    forbidden = _identifying_strings(cast.patient_a, cast.patient_b, patient_c)
    lines = [line for body in files.values() for line in body.decode().splitlines()]
    assert len(lines) == 18
    for line in lines:
        for text in forbidden:
            assert text not in line, (text, line)
        resource = orjson.loads(line)
        assert "name" not in resource and "telecom" not in resource and "address" not in resource
        assert "note" not in resource
    patients = [orjson.loads(x) for x in files["Patient"].splitlines()]
    assert sorted(p["birthDate"] for p in patients) == ["1950", "1950"]


def test_free_text_answers_are_dropped_and_coded_answers_kept(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _, files = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "QuestionnaireResponse"})
    response = orjson.loads(files["QuestionnaireResponse"].splitlines()[0])
    assert [i["linkId"] for i in response["item"]] == ["breath", "contact", "since"]
    assert response["item"][0]["answer"][0]["valueCoding"]["code"] == "2"
    assert all("text" not in i for i in response["item"])


def test_nested_free_text_is_dropped_too():
    items = [{"linkId": "g", "text": "Group", "item": [
        {"linkId": "q", "answer": [{"valueString": "secret", "item": [{"linkId": "n", "answer": [
            {"valueInteger": 3}]}]}]},
        {"linkId": "only-text", "answer": [{"valueString": "secret"}]}]}]
    cleaned = items_without_free_text(items, timedelta(0))
    assert "secret" not in orjson.dumps(cleaned).decode()
    # the coded follow-up of a free-text answer stays; an item left with nothing goes
    assert cleaned == [{"linkId": "g", "item": [{"linkId": "q", "answer": [
        {"item": [{"linkId": "n", "answer": [{"valueInteger": 3}]}]}]}]}]


def test_withdrawn_patients_are_left_out_of_every_export(cast, client, django_capture_on_commit_callbacks):
    patient_c = add_outcome_data(cast)
    key = pseudonym_key()
    hidden = pseudonym(patient_c.pk, key=key)
    for user, data in ((cast.quality, {}), (cast.admin, {"identified": "true", "purpose": "Audit of lung follow-up"}),
                       (cast.clinician_a, {})):
        _, files = _export(client, django_capture_on_commit_callbacks, user, data)
        body = b"".join(files.values()).decode()
        assert hidden not in body and str(patient_c.pk) not in body and "Carla" not in body


def test_pseudonyms_are_stable_across_runs_and_differ_across_keys(
        cast, client, django_capture_on_commit_callbacks, settings):
    add_outcome_data(cast)
    _, first = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "Patient"})
    _, second = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "Patient"})
    assert first["Patient"] == second["Patient"]
    expected = pseudonym(cast.patient_a.pk, key=b"key-of-project-one")
    assert expected in first["Patient"].decode() and len(expected) == 64
    settings.EXPORT_PSEUDONYM_KEY = "key-of-project-two"
    _, other = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "Patient"})
    ids_one = {orjson.loads(x)["id"] for x in first["Patient"].splitlines()}
    ids_two = {orjson.loads(x)["id"] for x in other["Patient"].splitlines()}
    assert len(ids_two) == 2 and not ids_one & ids_two


def test_references_inside_a_pseudonymised_export_resolve_to_the_pseudonymous_patients(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _, files = _export(client, django_capture_on_commit_callbacks, cast.quality)
    patient_ids = {orjson.loads(x)["id"] for x in files["Patient"].splitlines()}
    for line in files["Observation"].splitlines():
        assert orjson.loads(line)["subject"]["reference"].removeprefix("Patient/") in patient_ids


def test_date_shift_is_per_patient_deterministic_and_keeps_intervals():
    pseudo = Pseudonymiser(b"k", shift_dates=True)
    a, b = pseudo.shift("patient-a"), pseudo.shift("patient-b")
    assert a == Pseudonymiser(b"k", shift_dates=True).shift("patient-a")
    assert a != timedelta(0) and abs(a.days) <= 182
    assert a != b or pseudo.shift("patient-c") != a
    assert Pseudonymiser(b"k", shift_dates=False).shift("patient-a") == timedelta(0)


def test_date_shifted_export_moves_every_date_of_a_patient_by_the_same_days(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _, plain = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "EpisodeOfCare"})
    _, shifted = _export(client, django_capture_on_commit_callbacks, cast.quality,
                         {"_type": "EpisodeOfCare", "dateShift": "true"})
    by_patient = {orjson.loads(x)["patient"]["reference"]: orjson.loads(x) for x in plain["EpisodeOfCare"].splitlines()}
    for line in shifted["EpisodeOfCare"].splitlines():
        episode = orjson.loads(line)
        original = by_patient[episode["patient"]["reference"]]
        assert episode["period"]["start"] != original["period"]["start"]
        days = date.fromisoformat(episode["period"]["start"]) - date.fromisoformat(original["period"]["start"])
        assert 1 <= abs(days.days) <= 182


def test_production_shape_without_a_pseudonym_key_refuses_pseudonymised_exports(cast, client, settings):
    settings.EXPORT_PSEUDONYM_KEY = ""
    client.force_login(cast.quality)
    response = client.get("/fhir/$export", HTTP_PREFER="respond-async")
    assert response.status_code == 503
    assert "pseudonym key" in response.json()["issue"][0]["diagnostics"]
    assert not ExportJob.objects.exists()


# --- identified exports ----------------------------------------------------------------------

def test_quality_staff_cannot_ask_for_an_identified_export(cast, client):
    client.force_login(cast.quality)
    response = client.get("/fhir/$export", {"identified": "true", "purpose": "Because I would like to"},
                          HTTP_PREFER="respond-async")
    assert response.status_code == 403
    assert not ExportJob.objects.exists()


def test_identified_export_needs_a_stated_purpose(cast, client):
    client.force_login(cast.admin)
    response = client.get("/fhir/$export", {"identified": "true"}, HTTP_PREFER="respond-async")
    assert response.status_code == 400 and "purpose" in response.json()["issue"][0]["diagnostics"]
    response = client.get("/fhir/$export", {"identified": "maybe", "purpose": "x" * 20}, HTTP_PREFER="respond-async")
    assert response.status_code == 400


def test_identified_export_by_an_admin_carries_cpr_and_names_and_audits_the_purpose(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    purpose = "Validation of the lung registry report 2026"
    manifest, files = _export(client, django_capture_on_commit_callbacks, cast.admin,
                              {"identified": "true", "purpose": purpose, "_type": "Patient"})
    assert manifest["extension"]["https://proplatform.dk/fhir/bulk/pseudonymised"] is False
    body = files["Patient"].decode()
    assert "0101501111" in body and "Alma" in body and "Bodil" in body
    audit = AuditEvent.objects.filter(action=Action.EXPORT, user=cast.admin).last()
    assert purpose in audit.resource and "identified" in audit.resource


def test_each_download_of_an_identified_file_is_audited_naming_every_patient_in_it(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    manifest, _ = _export(client, django_capture_on_commit_callbacks, cast.clinician_a,
                          {"identified": "true", "purpose": "Clinical quality review, team A", "_type": "Patient"})
    assert not AuditEvent.objects.filter(action=Action.EXPORT).exclude(patient_ref=None).exists()
    assert client.get(manifest["output"][0]["url"]).status_code == 200
    named = set(AuditEvent.objects.filter(action=Action.EXPORT, user=cast.clinician_a)
                .exclude(patient_ref=None).values_list("patient_ref", flat=True))
    assert named == {cast.patient_a.pk}  # team A's patient, and not team B's


def test_a_pseudonymised_download_names_no_patient_in_the_audit(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    manifest, _ = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "Patient"})
    assert client.get(manifest["output"][0]["url"]).status_code == 200
    assert not AuditEvent.objects.filter(action=Action.EXPORT).exclude(patient_ref=None).exists()


def test_identified_export_by_a_clinician_covers_only_their_teams_patients(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _, files = _export(client, django_capture_on_commit_callbacks, cast.clinician_a,
                       {"identified": "true", "purpose": "Clinical quality review, team A", "_type": "Patient"})
    body = files["Patient"].decode()
    assert "Alma" in body and "Bodil" not in body


def test_export_job_never_has_a_cpr_number_in_its_urls(cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    manifest, _ = _export(client, django_capture_on_commit_callbacks, cast.admin,
                          {"identified": "true", "purpose": "Validation of the registry", "_type": "Patient"})
    urls = [manifest["request"], *[o["url"] for o in manifest["output"]]]
    assert not any("010150" in u or "0101501111" in u for u in urls)


def test_no_database_key_of_a_care_team_and_no_typed_option_display_leaves_a_pseudonymised_export(
        cast, client, django_capture_on_commit_callbacks):
    add_outcome_data(cast)
    _, files = _export(client, django_capture_on_commit_callbacks, cast.quality, {"_type": "EpisodeOfCare"})
    # A logical reference since issue 21 (no CareTeam resource is served or exported).
    teams = {orjson.loads(line)["team"][0]["identifier"]["value"] for line in files["EpisodeOfCare"].splitlines()}
    assert teams and all(len(ref) == 64 for ref in teams), teams  # keyed, not 1, 2...
    assert {str(cast.team_a.pk), str(cast.team_b.pk)}.isdisjoint(teams)
    typed = [{"linkId": "where", "answer": [{"valueCoding": {"system": "urn:x", "code": "k",
                                                             "display": "at my neighbour Hansen's"}}]}]
    assert items_without_free_text(typed, timedelta(0)) == [
        {"linkId": "where", "answer": [{"valueCoding": {"system": "urn:x", "code": "k"}}]}]
