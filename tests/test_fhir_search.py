"""FHIR search (issue 21 items 3 and 4): every declared parameter honoured with standard syntax,
nothing dropped or cut silently, keyset paging, strict handling, scoping, and Patient search by
CPR number without the number reaching a link or a log line."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from alerts.models import Alert, Rule, Status
from audit.models import Action, AuditEvent
from interop.mapping import CPR_SYSTEM
from monitoring.models import Reading, Source
from questionnaires.models import QuestionnaireResponse
from tests.factories import Cast

pytestmark = pytest.mark.django_db
SPO2, WEIGHT = "59408-5", "29463-7"
T0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)  # 10:00 Danish time


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _readings(patient, n: int, *, measure: str = "spo2", start: datetime = T0, step: timedelta = timedelta(hours=1),
              value: str = "95") -> list[Reading]:
    unit = {"spo2": "%", "body-weight": "kg"}[measure]
    return Reading.objects.bulk_create([
        Reading(patient=patient, measure=measure, value=Decimal(value), unit=unit, effective_at=start + i * step,
                source=Source.DEVICE) for i in range(n)])


def _score_response(cast: Cast, authored: datetime, code: str = "44261-6") -> QuestionnaireResponse:
    return QuestionnaireResponse.objects.create(
        patient=cast.patient_a, questionnaire=cast.questionnaire, author=cast.patient_a.user, items=[],
        authored_at=authored, scores=[{"code": {"system": "http://loinc.org", "code": code, "display": "x"},
                                       "value": 4}])


def _search(client: Client, path: str, params, **headers):
    response = client.get(path, params, **headers)
    assert response.status_code == 200, response.json()
    body = response.json()
    Bundle.model_validate(body)
    return body


def _matches(bundle) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _link(bundle, relation: str) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == relation), None)


def _follow(client: Client, url: str):
    parts = urlsplit(url)
    return _search(client, parts.path, {k: v if len(v) > 1 else v[0] for k, v in parse_qs(parts.query).items()})


def _bad(response, name: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    # Named in the text, or (text the database cannot hold, refused before any parsing) as the
    # issue's expression.
    assert issue["diagnostics"].startswith(f"{name}:") or issue.get("expression") == [name], outcome


# --- CapabilityStatement ---------------------------------------------------------------------

def test_the_capability_statement_lists_each_search_parameter_with_its_type_and_definition(db, client):
    body = client.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(body)
    params = {r["type"]: {p["name"]: p for p in r.get("searchParam", [])} for r in body["rest"][0]["resource"]}
    assert set(params["Observation"]) >= {"patient", "subject", "code", "category", "date", "_id", "_lastUpdated"}
    assert set(params["QuestionnaireResponse"]) >= {"patient", "subject", "questionnaire", "authored", "status"}
    assert set(params["Questionnaire"]) >= {"url", "name", "title", "status", "version"}
    assert set(params["Patient"]) >= {"_id", "identifier", "name", "family", "given", "birthdate"}
    assert set(params["Flag"]) >= {"patient", "status", "date"}
    assert set(params["DetectedIssue"]) >= {"patient", "status", "date"}
    assert "name" in params["Group"]
    assert params["Observation"]["code"] == {
        "name": "code", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/clinical-code",
        "documentation": params["Observation"]["code"]["documentation"]}
    assert params["Patient"]["birthdate"]["type"] == "date"
    assert all(p["definition"].startswith("http") for ps in params.values() for p in ps.values())


# --- Observation: code, date, category, references ------------------------------------------

def test_the_testers_search_by_code_and_a_future_date_finds_nothing(cast):
    _readings(cast.patient_a, 64)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation",
                     {"patient": str(cast.patient_a.pk), "code": f"http://loinc.org|{SPO2}", "date": "ge2030-01-01"})
    assert bundle["total"] == 0 and _matches(bundle) == []


@pytest.mark.parametrize(("code", "expected"), [
    (SPO2, 3), (f"http://loinc.org|{SPO2}", 3), (f"|{SPO2}", 0), ("http://loinc.org|", 6),
    (f"{SPO2},{WEIGHT}", 5), (f"http://snomed.info/sct|{SPO2}", 0), ("44261-6", 1),
])
def test_code_is_a_token_in_every_form(cast, code, expected):
    _readings(cast.patient_a, 3)
    _readings(cast.patient_a, 2, measure="body-weight", value="80")
    _score_response(cast, T0)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation", {"patient": str(cast.patient_a.pk), "code": code})
    assert bundle["total"] == expected == len(_matches(bundle))


def test_a_readings_npu_code_finds_it_beside_the_loinc_code(cast):
    [reading] = _readings(cast.patient_a, 1)
    Reading.objects.filter(pk=reading.pk).update(original={"system": "NPU", "code": "NPU03011"})
    client = _client(cast.clinician_a)
    for code in ("urn:oid:1.2.208.176.2.1|NPU03011", "NPU03011", SPO2):
        assert _matches(_search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk), "code": code})) == [
            f"reading-{reading.pk}"], code


@pytest.mark.parametrize(("category", "expected"), [
    ("vital-signs", 2), ("survey", 1), ("survey,vital-signs", 3),
    ("http://terminology.hl7.org/CodeSystem/observation-category|survey", 1), ("laboratory", 0),
    ("http://example.org/other|survey", 0),
])
def test_category_takes_system_and_code_and_or_lists(cast, category, expected):
    _readings(cast.patient_a, 2)
    _score_response(cast, T0)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation",
                     {"patient": str(cast.patient_a.pk), "category": category})
    assert bundle["total"] == expected


@pytest.mark.parametrize("form", ["{id}", "Patient/{id}", "http://testserver/fhir/Patient/{id}",
                                  "https://testserver/fhir/Patient/{id}"])
@pytest.mark.parametrize("name", ["patient", "subject", "subject:Patient"])
def test_the_patient_reference_is_accepted_in_every_form(cast, form, name):
    _readings(cast.patient_a, 2)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation", {name: form.format(id=cast.patient_a.pk)})
    assert bundle["total"] == 2


def test_a_reference_to_another_server_or_type_is_400_naming_the_parameter(cast):
    client = _client(cast.clinician_a)
    _bad(client.get("/fhir/Observation", {"subject": f"https://elsewhere.example/fhir/Patient/{cast.patient_a.pk}"}),
         "subject")
    _bad(client.get("/fhir/Observation", {"subject": f"Group/{cast.patient_a.pk}"}), "subject")
    _bad(client.get("/fhir/Observation", {"code": SPO2}), "patient")


# Readings every 6 hours from 2026-03-05 10:00 Danish time: 10:00, 16:00, 22:00, 04:00 (6th), ...
@pytest.mark.parametrize(("date", "expected"), [
    ("2026", 8), ("2026-03", 8), ("2026-03-05", 3), ("eq2026-03-05", 3), ("ne2026-03-05", 5),
    ("lt2026-03-06", 3), ("le2026-03-05", 3), ("eb2026-03-06", 3), ("gt2026-03-05", 5), ("sa2026-03-05", 5),
    ("ge2026-03-06", 5), ("2026-03-05T10:00", 1), ("2026-03-05T09:00:00Z", 1), ("2026-03-05T10:00:00+01:00", 1),
    ("gt2026-03-05T10:00:00+01:00", 7), ("ge2026-03-05T16:00", 7), ("2025", 0), ("2026-04", 0),
])
def test_dates_take_prefixes_and_partial_dates_with_their_implicit_range(cast, date, expected):
    _readings(cast.patient_a, 8, step=timedelta(hours=6))
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation", {"patient": str(cast.patient_a.pk), "date": date})
    assert bundle["total"] == expected


def test_two_dates_are_and_ed_into_a_range(cast):
    _readings(cast.patient_a, 8, step=timedelta(hours=6))
    client = _client(cast.clinician_a)
    response = client.get("/fhir/Observation?" + f"patient={cast.patient_a.pk}&date=ge2026-03-06&date=lt2026-03-07")
    assert response.json()["total"] == 4


def test_observation_id_and_last_updated_filter(cast):
    readings = _readings(cast.patient_a, 3)
    response = _score_response(cast, T0)
    client = _client(cast.clinician_a)
    ids = f"reading-{readings[1].pk},qr{response.pk}-score0"
    assert sorted(_matches(_search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk), "_id": ids}))) \
        == sorted(ids.split(","))
    assert _search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk),
                                                 "_lastUpdated": "lt2000-01-01"})["total"] == 0


def test_sort_by_date_both_ways_merges_readings_and_scores(cast):
    readings = _readings(cast.patient_a, 2, step=timedelta(hours=2))
    response = _score_response(cast, T0 + timedelta(hours=1))
    client = _client(cast.clinician_a)
    patient = str(cast.patient_a.pk)
    newest_first = [f"reading-{readings[1].pk}", f"qr{response.pk}-score0", f"reading-{readings[0].pk}"]
    assert _matches(_search(client, "/fhir/Observation", {"patient": patient})) == newest_first
    assert _matches(_search(client, "/fhir/Observation", {"patient": patient, "_sort": "-date"})) == newest_first
    assert _matches(_search(client, "/fhir/Observation", {"patient": patient, "_sort": "date"})) == newest_first[::-1]


def test_summary_count_and_count_zero_answer_the_total_only(cast):
    _readings(cast.patient_a, 7)
    client = _client(cast.clinician_a)
    for params in ({"_summary": "count"}, {"_count": "0"}):
        bundle = _search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk), **params})
        assert bundle["total"] == 7 and "entry" not in bundle


def test_total_none_skips_the_count_but_still_pages(cast):
    _readings(cast.patient_a, 7)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation",
                     {"patient": str(cast.patient_a.pk), "_total": "none", "_count": "5"})
    assert "total" not in bundle and len(_matches(bundle)) == 5 and _link(bundle, "next")


@pytest.mark.parametrize(("params", "name"), [
    ({"date": "gx2020"}, "date"), ({"date": "2026-13"}, "date"), ({"date": "yesterday"}, "date"),
    ({"_count": "-1"}, "_count"), ({"_count": "abc"}, "_count"), ({"code": "a|b|c"}, "code"),
    ({"_sort": "value"}, "_sort"), ({"_sort": "date,-date"}, "_sort"), ({"code": "a\x00b"}, "code"),
    ({"code:not": SPO2}, "code:not"), ({"_cursor": "not-a-cursor"}, "_cursor"), ({"_total": "lots"}, "_total"),
    ({"patient": "0101501111"}, "patient"),
])
def test_bad_values_are_a_400_operation_outcome_naming_the_parameter(cast, params, name):
    response = _client(cast.clinician_a).get("/fhir/Observation", {"patient": str(cast.patient_a.pk), **params})
    _bad(response, name)


# --- Unsupported parameters, strict handling, _count limits -----------------------------------

def test_an_unsupported_parameter_is_reported_and_left_out_of_the_self_link(cast):
    _readings(cast.patient_a, 2)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation",
                     {"patient": str(cast.patient_a.pk), "value-quantity": "gt90"})
    [outcome] = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["resource"]["resourceType"] == "OperationOutcome"
    assert "value-quantity" in outcome["resource"]["issue"][0]["diagnostics"]
    assert "value-quantity" not in _link(bundle, "self") and "patient=" in _link(bundle, "self")
    assert bundle["total"] == 2


def test_with_strict_handling_an_unsupported_parameter_is_a_400(cast):
    response = _client(cast.clinician_a).get("/fhir/Observation", {"patient": str(cast.patient_a.pk),
                                                                   "value-quantity": "gt90"},
                                             HTTP_PREFER="handling=strict")
    _bad(response, "value-quantity")


def test_an_unsupported_include_or_summary_is_reported_or_refused_when_strict(cast):
    client = _client(cast.clinician_a)
    params = {"patient": str(cast.patient_a.pk), "_include": "Observation:device"}
    bundle = _search(client, "/fhir/Observation", params)
    assert any(e["search"]["mode"] == "outcome" for e in bundle["entry"])
    assert "_include" not in _link(bundle, "self")
    _bad(client.get("/fhir/Observation", params, HTTP_PREFER="handling=strict"), "_include")
    _bad(client.get("/fhir/Observation", {"patient": str(cast.patient_a.pk), "_summary": "text"},
                    HTTP_PREFER="handling=strict"), "_summary")


def test_a_count_above_the_maximum_is_clamped_and_said_or_refused_when_strict(cast):
    _readings(cast.patient_a, 3)
    client = _client(cast.clinician_a)
    bundle = _search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "5000"})
    [outcome] = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "1000" in outcome["resource"]["issue"][0]["diagnostics"]
    assert "_count=1000" in _link(bundle, "self")
    _bad(client.get("/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "5000"},
                    HTTP_PREFER="handling=strict"), "_count")


def test_the_default_page_is_100_and_the_rest_is_behind_next(cast):
    _readings(cast.patient_a, 150)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation", {"patient": str(cast.patient_a.pk)})
    assert bundle["total"] == 150 and len(_matches(bundle)) == 100 and _link(bundle, "next")


# --- Paging ------------------------------------------------------------------------------------

def test_paging_across_601_matches_with_readings_arriving_between_pages_has_no_duplicates_or_gaps(cast):
    original = {f"reading-{r.pk}" for r in _readings(cast.patient_a, 590, step=timedelta(minutes=10))}
    original |= {f"qr{_score_response(cast, T0 + timedelta(minutes=10 * i + 5)).pk}-score0" for i in range(11)}
    assert len(original) == 601
    client = _client(cast.clinician_a)
    params = {"patient": f"Patient/{cast.patient_a.pk}", "code": f"http://loinc.org|{SPO2},44261-6",
              "_sort": "-date", "_count": "100"}
    bundle = _search(client, "/fhir/Observation", params)
    assert bundle["total"] == 601
    seen: list[str] = _matches(bundle)
    newer, late = set(), set()
    pages = 1
    while url := _link(bundle, "next"):
        # New readings arrive between pages: one newer than everything (it lands before the
        # position: the next pages must not show it, nor shift by it) and one late upload older
        # than everything (a match still ahead: it must be shown, once).
        newer |= {f"reading-{r.pk}" for r in _readings(cast.patient_a, 1, start=T0 + timedelta(days=30 + pages))}
        late |= {f"reading-{r.pk}" for r in _readings(cast.patient_a, 1, start=T0 - timedelta(days=pages))}
        bundle = _follow(client, url)
        seen += _matches(bundle)
        pages += 1
    assert len(seen) == len(set(seen)), "a row was shown twice"
    assert original <= set(seen), "a row was skipped"
    assert late <= set(seen) and not newer & set(seen)
    assert len(seen) == 601 + len(late) and pages == 7
    assert "previous" not in {link["relation"] for link in _search(client, "/fhir/Observation", params)["link"]}


def test_the_previous_link_returns_the_page_before(cast):
    _readings(cast.patient_a, 25)
    client = _client(cast.clinician_a)
    first = _search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "10"})
    second = _follow(client, _link(first, "next"))
    third = _follow(client, _link(second, "next"))
    assert len(_matches(third)) == 5 and _link(third, "next") is None
    assert _matches(_follow(client, _link(third, "previous"))) == _matches(second)
    back_to_first = _follow(client, _link(second, "previous"))
    assert _matches(back_to_first) == _matches(first) and _link(back_to_first, "previous") is None


def test_a_changed_cursor_or_another_searchs_cursor_is_a_400(cast):
    _readings(cast.patient_a, 5)
    client = _client(cast.clinician_a)
    bundle = _search(client, "/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "2"})
    cursor = parse_qs(urlsplit(_link(bundle, "next")).query)["_cursor"][0]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    _bad(client.get("/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "2", "_cursor": tampered}),
         "_cursor")
    _bad(client.get("/fhir/Observation", {"patient": str(cast.patient_a.pk), "code": SPO2, "_cursor": cursor}),
         "_cursor")


def test_queryset_searches_page_with_links_too(cast):
    for i in range(5):
        Alert.objects.create(patient=cast.patient_a, rule=Rule.objects.filter(program=cast.program_a).first(),
                             rule_version=1, severity="red", reason="r", evidence={}, source_key=f"k{i}",
                             status=Status.RESOLVED, raised_at=T0 + timedelta(days=i))
    client = _client(cast.clinician_a)
    first = _search(client, "/fhir/Flag", {"patient": str(cast.patient_a.pk), "_count": "2"})
    ids = _matches(first)
    page = first
    while url := _link(page, "next"):
        page = _follow(client, url)
        ids += _matches(page)
    assert first["total"] == 5 and len(ids) == len(set(ids)) == 5


# --- Scoping -------------------------------------------------------------------------------------

def test_team_bs_clinician_never_sees_team_as_patient_through_any_search(cast):
    _readings(cast.patient_a, 5)
    _score_response(cast, T0)
    outsider = _client(cast.clinician_b)
    a = str(cast.patient_a.pk)
    for path, params in (("/fhir/Observation", {"patient": a}), ("/fhir/Observation", {"subject": f"Patient/{a}"}),
                         ("/fhir/Observation", {"patient": f"{a},{cast.patient_b.pk}"}),
                         ("/fhir/Observation", {"patient": a, "_include": "Observation:patient"}),
                         ("/fhir/QuestionnaireResponse", {"patient": a}), ("/fhir/Flag", {"patient": a}),
                         ("/fhir/DetectedIssue", {"patient": a})):
        response = outsider.get(path, params)
        assert response.status_code == 404, (path, params)
    for params in ({}, {"_id": a}, {"identifier": f"{CPR_SYSTEM}|0101501111"}, {"name": "Alma"}):
        bundle = _search(outsider, "/fhir/Patient", params)
        assert a not in _matches(bundle), params


def test_a_cursor_from_team_as_search_does_not_open_it_to_team_b(cast):
    _readings(cast.patient_a, 5)
    _readings(cast.patient_b, 5)
    insider = _client(cast.clinician_a)
    bundle = _search(insider, "/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "2"})
    cursor = parse_qs(urlsplit(_link(bundle, "next")).query)["_cursor"][0]
    outsider = _client(cast.clinician_b)
    assert outsider.get("/fhir/Observation", {"patient": str(cast.patient_a.pk), "_count": "2",
                                              "_cursor": cursor}).status_code == 404
    _bad(outsider.get("/fhir/Observation", {"patient": str(cast.patient_b.pk), "_count": "2", "_cursor": cursor}),
         "_cursor")


def test_include_adds_the_patient_as_an_include_entry_and_audits_the_read(cast):
    _readings(cast.patient_a, 2)
    bundle = _search(_client(cast.clinician_a), "/fhir/Observation",
                     {"patient": str(cast.patient_a.pk), "_include": "Observation:patient"})
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["id"] for e in included] == [str(cast.patient_a.pk)]
    assert AuditEvent.objects.filter(user=cast.clinician_a, action=Action.READ, patient_ref=cast.patient_a.pk,
                                     resource__contains="_include").exists()


# --- Patient search ------------------------------------------------------------------------------

def test_a_clinician_finds_their_teams_patients_and_each_one_is_audited(cast):
    bundle = _search(_client(cast.clinician_a), "/fhir/Patient", {})
    assert _matches(bundle) == [str(cast.patient_a.pk)]
    assert AuditEvent.objects.filter(user=cast.clinician_a, action=Action.READ, patient_ref=cast.patient_a.pk,
                                     resource__contains="FHIR search").count() == 1


def test_a_patient_finds_only_herself_and_quality_staff_nobody(cast):
    assert _matches(_search(_client(cast.patient_a.user), "/fhir/Patient", {})) == [str(cast.patient_a.pk)]
    assert _matches(_search(_client(cast.patient_a.user), "/fhir/Patient",
                            {"identifier": f"{CPR_SYSTEM}|0202502222"})) == []
    assert _client(cast.quality).get("/fhir/Patient").status_code == 403


@pytest.mark.parametrize(("params", "found"), [
    ({"family": "test"}, True), ({"family": "sen"}, False), ({"family:contains": "sen"}, True),
    ({"family:exact": "Testsen"}, True), ({"family:exact": "testsen"}, False), ({"given": "alma"}, True),
    ({"name": "Alma"}, True), ({"name": "Bodil"}, False), ({"birthdate": "1950-05-17"}, True),
    ({"birthdate": "1950"}, True), ({"birthdate": "lt1950-05-17"}, False), ({"birthdate": "ge1950-05"}, True),
    ({"_id": "{a}"}, True),
])
def test_patient_search_parameters(cast, params, found):
    params = {k: v.format(a=cast.patient_a.pk) for k, v in params.items()}
    bundle = _search(_client(cast.admin), "/fhir/Patient", params)
    assert (str(cast.patient_a.pk) in _matches(bundle)) is found


def test_a_cpr_number_where_a_patient_id_belongs_is_refused_and_not_echoed(cast):
    client = _client(cast.admin)
    for params in ({"_id": "0101501111"}, {"identifier": f"{CPR_SYSTEM}|0101501111|x"},
                   {"birthdate": "0101501111"}):
        response = client.get("/fhir/Patient", params)
        _bad(response, next(iter(params)))
        assert b"0101501111" not in response.content


def test_a_logged_query_string_with_a_url_encoded_cpr_search_is_redacted():
    from proplatform.privacy import RedactCprLogFilter

    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" 200', (
        f"GET /fhir/Patient?{urlencode({'identifier': f'{CPR_SYSTEM}|0101501111'})} HTTP/1.1",), None)
    RedactCprLogFilter().filter(record)
    assert "0101501111" not in record.getMessage() and "[cpr]" in record.getMessage()


def test_patient_search_sorts_by_several_keys_both_ways(cast):
    from patients.models import Patient

    Patient.objects.filter(pk=cast.patient_b.pk).update(family_name="Testsen", birth_date="1960-01-01")
    client = _client(cast.admin)
    a, b = str(cast.patient_a.pk), str(cast.patient_b.pk)
    assert _matches(_search(client, "/fhir/Patient", {"_sort": "family,-birthdate"})) == [b, a]
    assert _matches(_search(client, "/fhir/Patient", {"_sort": "family,birthdate"})) == [a, b]
    assert _matches(_search(client, "/fhir/Patient", {"_sort": "-given"})) == [b, a]
    paged = _search(client, "/fhir/Patient", {"_sort": "family,-birthdate", "_count": "1"})
    assert _matches(_follow(client, _link(paged, "next"))) == [a]


def _no_cpr_anywhere(bundle, caplog) -> None:
    for link in bundle.get("link", []):
        assert "0101501111" not in link["url"] and "010150" not in link["url"]
    assert "0101501111" not in caplog.text and "010150-1111" not in caplog.text
    for event in AuditEvent.objects.all():
        assert "0101501111" not in event.resource and "010150-1111" not in event.resource


@pytest.mark.parametrize("cpr", ["0101501111", "010150-1111"])
def test_patient_search_by_cpr_via_get_is_audited_and_the_cpr_stays_out_of_links_and_logs(cast, caplog, cpr):
    caplog.set_level(logging.DEBUG)
    client = _client(cast.clinician_a)
    bundle = _search(client, "/fhir/Patient", {"identifier": f"{CPR_SYSTEM}|{cpr}"})
    assert _matches(bundle) == [str(cast.patient_a.pk)]
    assert parse_qs(urlsplit(_link(bundle, "self")).query)["_id"] == [str(cast.patient_a.pk)]
    assert AuditEvent.objects.filter(user=cast.clinician_a, action=Action.READ,
                                     patient_ref=cast.patient_a.pk).exists()
    _no_cpr_anywhere(bundle, caplog)


def test_patient_search_by_cpr_via_post_search_pages_without_the_cpr(cast, caplog):
    caplog.set_level(logging.DEBUG)
    client = _client(cast.admin)
    form = urlencode({"identifier": f"{CPR_SYSTEM}|0101501111,{CPR_SYSTEM}|0202502222", "_count": "1",
                      "_sort": "given"})
    response = client.post("/fhir/Patient/_search", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.json()
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["total"] == 2 and _matches(bundle) == [str(cast.patient_a.pk)]
    second = _follow(client, _link(bundle, "next"))
    assert _matches(second) == [str(cast.patient_b.pk)]
    _no_cpr_anywhere(bundle, caplog)
    _no_cpr_anywhere(second, caplog)
    assert AuditEvent.objects.filter(user=cast.admin, action=Action.READ, patient_ref=cast.patient_b.pk).exists()


def test_a_cpr_search_that_finds_nobody_has_no_links_that_could_name_it(cast, caplog):
    bundle = _search(_client(cast.clinician_b), "/fhir/Patient", {"identifier": f"{CPR_SYSTEM}|0101501111"})
    assert _matches(bundle) == [] and bundle["total"] == 0
    _no_cpr_anywhere(bundle, caplog)


def test_an_identifier_of_another_system_matches_nobody(cast):
    bundle = _search(_client(cast.admin), "/fhir/Patient", {"identifier": "urn:other|0101501111"})
    assert bundle["total"] == 0


# --- QuestionnaireResponse, Questionnaire, Flag, DetectedIssue, Group ------------------------------

def test_questionnaire_response_search_parameters(cast):
    response = _score_response(cast, T0)
    client = _client(cast.clinician_a)
    a = str(cast.patient_a.pk)
    q = cast.questionnaire
    for params, expected in (({"questionnaire": q.url}, 1), ({"questionnaire": f"{q.url}|{q.version}"}, 1),
                             ({"questionnaire": f"{q.url}|0.0.0-none"}, 0),
                             ({"questionnaire": f"Questionnaire/{q.pk}"}, 1),
                             ({"authored": "2026-03-05"}, 1), ({"authored": "gt2026-03-05"}, 0),
                             ({"status": "completed"}, 1), ({"status": "in-progress"}, 0),
                             ({"_id": str(response.pk)}, 1)):
        assert _search(client, "/fhir/QuestionnaireResponse", {"subject": f"Patient/{a}", **params})["total"] \
            == expected, params
    bundle = _search(client, "/fhir/QuestionnaireResponse",
                     {"patient": a, "_include": "QuestionnaireResponse:questionnaire"})
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["QuestionnaireResponse", "Questionnaire"]


def test_questionnaire_search_parameters(cast):
    client = _client(cast.clinician_a)
    q = cast.questionnaire
    name = q.resource.get("name") or ""
    cases = [({"url": q.url}, 1), ({"title": q.title[:4]}, 1), ({"title": "zzz"}, 0), ({"status": q.status}, 1),
             ({"status": "retired"}, 0), ({"version": q.version}, 1), ({"version": "0.0.0-none"}, 0)]
    if name:
        cases += [({"name": name[:3]}, 1), ({"name": "zzz"}, 0)]
    for params, expected in cases:
        assert _search(client, "/fhir/Questionnaire", params)["total"] == expected, params


def test_flag_and_detected_issue_filter_by_status_and_date(cast):
    rule = Rule.objects.filter(program=cast.program_a).first()
    for i, state in enumerate((Status.OPEN, Status.RESOLVED)):
        Alert.objects.create(patient=cast.patient_a, rule=rule, rule_version=1, severity="red", reason="r",
                             evidence={}, source_key=f"k{i}", status=state, raised_at=T0 + timedelta(days=i))
    client = _client(cast.clinician_a)
    a = str(cast.patient_a.pk)
    assert _search(client, "/fhir/Flag", {"patient": a, "status": "active"})["total"] == 1
    assert _search(client, "/fhir/Flag", {"patient": a, "status": "active,inactive"})["total"] == 2
    assert _search(client, "/fhir/Flag", {"patient": a, "date": "2026-03-06"})["total"] == 1
    assert _search(client, "/fhir/DetectedIssue", {"patient": a, "status": "final"})["total"] == 1
    assert _search(client, "/fhir/DetectedIssue", {"patient": a, "date": "ge2026-03-05", "_sort": "date"})["total"] == 2
    _bad(client.get("/fhir/DetectedIssue", {"patient": a, "status": "open"}), "status")


def test_group_search_by_name_starts_with_and_contains(cast):
    from outcomes.models import Cohort

    Cohort.objects.create(name="Lung 2025", program=cast.program_a)
    client = _client(cast.admin)
    assert _search(client, "/fhir/Group", {"name": "lung"})["total"] == 1
    assert _search(client, "/fhir/Group", {"name": "2025"})["total"] == 0
    assert _search(client, "/fhir/Group", {"name:contains": "2025"})["total"] == 1
