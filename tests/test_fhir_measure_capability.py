"""The CapabilityStatement says the outcome indicators' FHIR endpoints exist: Measure (read,
search, $evaluate-measure) and MeasureReport (search by measure and period), and it still
validates against HL7's official R4 JSON schema (tests/fhir_schema.py)."""

import pytest
from django.test import Client

from tests.fhir_schema import fhir_problems

pytestmark = pytest.mark.django_db


def _statement() -> dict:
    answer = Client().get("/fhir/metadata")
    assert answer.status_code == 200
    return answer.json()


def test_metadata_lists_measure_with_evaluate_measure_and_measurereport_with_its_search_parameters():
    body = _statement()
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    measure = resources["Measure"]
    assert {i["code"] for i in measure["interaction"]} == {"read", "search-type"}
    assert measure["operation"] == [{
        "name": "evaluate-measure", "definition": "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
        "documentation": measure["operation"][0]["documentation"]}]
    report = resources["MeasureReport"]
    assert {i["code"] for i in report["interaction"]} == {"search-type"}
    params = {p["name"]: p for p in report["searchParam"]}
    assert params["measure"]["type"] == "reference" and params["period"]["type"] == "date"
    assert params["period"]["definition"] == "http://hl7.org/fhir/SearchParameter/MeasureReport-period"


def test_the_statement_with_the_measures_validates_against_the_official_r4_schema():
    assert fhir_problems(_statement()) == []


def test_what_the_statement_promises_answers_a_bad_period_with_an_operationoutcome(cast):
    client = Client()
    client.force_login(cast.quality)
    answer = client.get("/fhir/Measure/response-rate-3m/$evaluate-measure?periodStart=2026-13")
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome"
    listed = client.get("/fhir/MeasureReport?measure=response-rate-3m&period=2026")
    assert listed.status_code == 200 and listed.json()["resourceType"] == "Bundle"
