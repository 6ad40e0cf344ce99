"""The outcome indicators over FHIR: every indicator a Measure; results as summary MeasureReports
with numerator/denominator, measureScore and one stratifier per breakdown, suppressed as the
pages are; bad periods answered 400 with an OperationOutcome. Validated with the R4B models."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome

from outcomes.indicators import INDICATORS
from tests.test_indicator_pages import world  # noqa: F401 - the same hand-made world as the pages

FHIR = {"HTTP_ACCEPT": "application/fhir+json"}


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def test_every_indicator_is_a_valid_measure_in_one_searchset(world):  # noqa: F811
    answer = _client(world.analyst).get("/fhir/Measure", **FHIR)
    assert answer.status_code == 200
    bundle = Bundle.model_validate(answer.json())
    assert bundle.total == len(INDICATORS)
    for entry in answer.json()["entry"]:
        Measure.model_validate(entry["resource"])
    one = Measure.model_validate(_client(world.quality).get("/fhir/Measure/response-rate-3m", **FHIR).json())
    assert one.scoring.coding[0].code == "proportion"
    assert one.improvementNotation.coding[0].code == "increase"
    assert {p.code.coding[0].code for p in one.group[0].population} >= {"numerator", "denominator"}


def test_evaluate_measure_gives_a_summary_report_with_the_pages_figures_and_suppression(world):  # noqa: F811
    start = (timezone.localdate() - timedelta(days=365)).isoformat()
    answer = _client(world.analyst).get(
        f"/fhir/Measure/response-rate-3m/$evaluate-measure?periodStart={start}&periodEnd={timezone.localdate()}",
        **FHIR)
    assert answer.status_code == 200, answer.content
    report = MeasureReport.model_validate(answer.json())
    assert report.type == "summary" and report.status == "complete"
    group = answer.json()["group"][0]
    counts = {p["code"]["coding"][0]["code"]: p.get("count") for p in group["population"]}
    assert counts == {"numerator": 13, "denominator": 25}
    assert group["measureScore"]["value"] == 52.0
    by_code = {s["code"][0]["coding"][0]["code"]: s["stratum"] for s in group["stratifier"]}
    assert set(by_code) == {"region", "department", "team", "quarter", "sex", "age-band"}
    teams = {s["value"]["text"]: s for s in by_code["team"]}
    # Team A2 (3 patients) and its complement Team A are masked: no count, no score.
    for name in ("Team A2", "Team A"):
        assert "measureScore" not in teams[name]
        assert all("count" not in p for p in teams[name]["population"])
        assert teams[name]["extension"][0]["valueCode"] == "masked"
    assert teams["Team B"]["measureScore"]["value"] == 50.0


def test_measure_report_search_takes_the_measure_url_and_a_period(world):  # noqa: F811
    year = timezone.localdate().year
    answer = _client(world.quality).get(
        f"/fhir/MeasureReport?measure=https://proplatform.dk/fhir/Measure/response-rate-3m"
        f"&period=ge{year - 1}&period=le{year}", **FHIR)
    assert answer.status_code == 200
    bundle = Bundle.model_validate(answer.json())
    assert bundle.total == 1
    report = MeasureReport.model_validate(answer.json()["entry"][0]["resource"])
    assert str(report.period.start) == f"{year - 1}-01-01" and str(report.period.end) == f"{year}-12-31"


@pytest.mark.parametrize("query", [
    "/fhir/Measure/response-rate-3m/$evaluate-measure?periodStart=2026-13-01",
    "/fhir/Measure/response-rate-3m/$evaluate-measure?periodStart=2026-06-01&periodEnd=2026-01-01",
    "/fhir/Measure/response-rate-3m/$evaluate-measure?periodStart=yesterday",
    "/fhir/MeasureReport?measure=response-rate-3m&period=2026-02-30",
    "/fhir/MeasureReport?measure=response-rate-3m&period=ge2026-06&period=le2026-01",
    "/fhir/MeasureReport?period=2026",
])
def test_a_bad_period_or_missing_measure_is_a_400_operation_outcome(world, query):  # noqa: F811
    answer = _client(world.quality).get(query, **FHIR)
    assert answer.status_code == 400
    OperationOutcome.model_validate(answer.json())


def test_patients_and_clinicians_get_no_measure_reports(world):  # noqa: F811
    for user in (world.patient_a.user, world.clinician_a):
        answer = _client(user).get("/fhir/Measure/response-rate-3m/$evaluate-measure", **FHIR)
        assert answer.status_code == 403
        OperationOutcome.model_validate(answer.json())
