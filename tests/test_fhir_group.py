"""Cohorts as FHIR R4 Group: definitional (criteria, no member list), validated with the R4B
models, for quality staff and administrators only; errors as OperationOutcome."""

from datetime import date

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.group import Group
from fhir.resources.R4B.operationoutcome import OperationOutcome

from audit.models import Action, AuditEvent, Outcome
from interop.group import CRITERION_SYSTEM, SKS_SYSTEM, cohort_to_group
from outcomes.models import Cohort
from patients.models import Patient, Region, Sex, TreatmentEpisode
from tests.factories import Cast

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json"


def _outcome(response, status: int, code: str) -> OperationOutcome:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].severity == "error" and outcome.issue[0].code == code
    return outcome


def _full_cohort(cast: Cast) -> Cohort:
    return Cohort.objects.create(
        name="Lung, women 60-69, 2025", program=cast.program_a, condition_code="DC34",
        treatment_start_from=date(2025, 1, 1), treatment_start_to=date(2025, 12, 31), department="Lunge",
        region=Region.MIDTJYLLAND, sex=Sex.FEMALE, age_min=60, age_max=69)


def _by_code(group: dict) -> dict[str, dict]:
    return {c["code"]["coding"][0]["code"]: c for c in group["characteristic"]}


def test_every_criterion_becomes_a_valid_r4_characteristic(cast: Cast) -> None:
    group = cohort_to_group(_full_cohort(cast), member_count=12)
    Group.model_validate(group)
    assert (group["type"], group["actual"], group["quantity"]) == ("person", False, 12)
    assert "member" not in group  # membership is evaluated when the Group is used
    chars = _by_code(group)
    assert chars["program"]["valueCodeableConcept"]["coding"][0]["code"] == "lung"
    assert chars["29308-4"]["valueCodeableConcept"]["coding"][0] == {"system": SKS_SYSTEM, "code": "DC34"}
    assert chars["treatment-start"]["valueBoolean"] is True
    assert chars["treatment-start"]["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    assert chars["department"]["valueCodeableConcept"]["text"] == "Lunge"
    assert chars["region"]["valueCodeableConcept"]["coding"][0]["code"] == "1082"
    assert chars["46098-0"]["valueCodeableConcept"]["coding"][0]["code"] == "female"
    assert chars["age-at-index"]["valueRange"] == {
        "low": {"value": 60, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"},
        "high": {"value": 69, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}}
    withdrawn = chars["secondary-use-withdrawn"]
    assert (withdrawn["exclude"], withdrawn["valueBoolean"]) == (True, True)
    assert all(c["exclude"] is False for code, c in chars.items() if code != "secondary-use-withdrawn")


def test_an_open_ended_band_and_period_keep_only_the_given_end(cast: Cast) -> None:
    cohort = Cohort.objects.create(name="80+", age_min=80, treatment_start_from=date(2025, 1, 1))
    group = cohort_to_group(cohort, member_count=0)
    Group.model_validate(group)
    chars = _by_code(group)
    assert chars["age-at-index"]["valueRange"] == {
        "low": {"value": 80, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}}
    assert chars["treatment-start"]["period"] == {"start": "2025-01-01"}
    assert group["quantity"] == 0


def test_an_empty_cohort_still_states_that_withdrawn_patients_are_excluded(cast: Cast) -> None:
    group = cohort_to_group(Cohort.objects.create(name="All"), member_count=40)
    Group.model_validate(group)
    assert [c["code"]["coding"][0] for c in group["characteristic"]] == [
        {"system": CRITERION_SYSTEM, "code": "secondary-use-withdrawn", "display": "Withdrew from secondary use"}]


@pytest.mark.parametrize(("count", "shown"), [(0, True), (1, False), (4, False), (5, True)])
def test_quantity_is_left_out_when_the_cohort_has_one_to_four_members(cast: Cast, count: int, shown: bool) -> None:
    group = cohort_to_group(Cohort.objects.create(name="c"), member_count=count)
    assert ("quantity" in group) is shown


def test_group_read_is_valid_counts_members_now_and_is_audited(cast: Cast, client) -> None:
    cohort = Cohort.objects.create(name="Lung", program=cast.program_a)
    for i in range(5):
        p = Patient.objects.create(cpr=f"0101{60 + i}-1{i}00", given_name="G", family_name="F",
                                   birth_date=date(1960 + i, 1, 1), sex=Sex.MALE)
        TreatmentEpisode.objects.create(patient=p, program=cast.program_a, care_team=cast.team_a,
                                        condition_code="DC34", treatment_start=timezone.localdate())
    client.force_login(cast.quality)
    response = client.get(f"/fhir/Group/{cohort.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith(FHIR_JSON)
    group = Group.model_validate(response.json())
    assert group.quantity == 6 and group.actual is False and group.name == "Lung"
    # Evaluated at read time: a withdrawal shows at once.
    Patient.objects.filter(pk=cast.patient_a.pk).update(secondary_use_withdrawn_at=timezone.now())
    assert client.get(f"/fhir/Group/{cohort.pk}").json()["quantity"] == 5
    assert AuditEvent.objects.filter(user=cast.quality, action=Action.READ, resource=f"Group/{cohort.pk} (FHIR)",
                                     patient_ref=None).count() == 2


def test_group_search_is_a_valid_searchset_filterable_by_name(cast: Cast, client) -> None:
    Cohort.objects.create(name="Lung 2025", program=cast.program_a)
    Cohort.objects.create(name="Heart failure", program=cast.program_b)
    client.force_login(cast.admin)
    bundle = Bundle.model_validate(client.get("/fhir/Group").json())
    assert bundle.type == "searchset" and bundle.total == 2
    for entry in bundle.entry or []:
        assert entry.resource is not None
        Group.model_validate(entry.resource.model_dump())
    only = client.get("/fhir/Group", {"name": "lung"}).json()
    assert [e["resource"]["name"] for e in only["entry"]] == ["Lung 2025"]
    assert "quantity" not in only["entry"][0]["resource"]  # one member: suppressed
    assert AuditEvent.objects.filter(user=cast.admin, action=Action.SEARCH).exists()


@pytest.mark.parametrize("group_id", ["999999", "abc", "0", "1.5", "9" * 30, "' OR 1=1", "²", "-1"])
def test_an_unknown_or_malformed_group_id_is_a_404_operation_outcome(cast: Cast, client, group_id: str) -> None:
    client.force_login(cast.quality)
    _outcome(client.get(f"/fhir/Group/{group_id}"), 404, "not-found")


@pytest.mark.parametrize("who", ["clinician_a", "patient"])
def test_clinicians_and_patients_get_a_403_operation_outcome_and_the_refusal_is_audited(
        cast: Cast, client, who: str) -> None:
    cohort = Cohort.objects.create(name="Lung")
    user = cast.clinician_a if who == "clinician_a" else cast.patient_a.user
    client.force_login(user)
    _outcome(client.get(f"/fhir/Group/{cohort.pk}"), 403, "forbidden")
    _outcome(client.get("/fhir/Group"), 403, "forbidden")
    assert AuditEvent.objects.filter(user=user, outcome=Outcome.DENIED, resource__startswith="Group").count() == 2


def test_signed_out_requests_get_a_401_operation_outcome(cast: Cast, client) -> None:
    cohort = Cohort.objects.create(name="Lung")
    _outcome(client.get(f"/fhir/Group/{cohort.pk}"), 401, "login")


def test_groups_cannot_be_written(cast: Cast, client) -> None:
    cohort = Cohort.objects.create(name="Lung")
    client.force_login(cast.admin)
    _outcome(client.put(f"/fhir/Group/{cohort.pk}", {}, content_type=FHIR_JSON), 405, "not-supported")
    _outcome(client.post("/fhir/Group", {}, content_type="application/json"), 405, "not-supported")
    assert Cohort.objects.get(pk=cohort.pk).name == "Lung"
