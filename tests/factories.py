"""The fixed cast every access test uses: patient A (team A), patient B (team B), a clinician
on each team, quality staff and an administrator."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Role, User
from alerts.models import Rule, Severity
from monitoring.models import Device, DeviceKind, DeviceToken
from patients.models import CareTeam, Patient, Program, Region, Sex, TreatmentEpisode
from questionnaires.library import load
from questionnaires.models import Questionnaire
from questionnaires.services import questionnaire_import

PASSWORD = "test-pass-9876"  # noqa: S105
LENT_DAYS_AGO = 365 * 40  # Synthea writes vital signs from years back


def make_user(username: str, role: Role, **extra: Any) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, role=role, **extra)


def make_patient(username: str, cpr: str, team: CareTeam, program: Program, *,
                 given_name: str | None = None) -> Patient:
    user = make_user(username, Role.PATIENT)
    patient = Patient.objects.create(
        user=user, cpr=cpr, given_name=given_name or username.title(),
        family_name="Testsen", birth_date=date(1950, 5, 17), sex=Sex.FEMALE, phone="+45 11 22 33 44",
    )
    TreatmentEpisode.objects.create(
        patient=patient, program=program, care_team=team, condition_code=program.condition_code,
        treatment_start=timezone.localdate() - timedelta(days=30),
    )
    return patient


@dataclass
class Cast:
    team_a: CareTeam
    team_b: CareTeam
    program_a: Program
    program_b: Program
    questionnaire: Questionnaire
    patient_a: Patient
    patient_b: Patient
    clinician_a: User
    clinician_b: User
    quality: User
    admin: User
    device_a: Device
    device_token_a: str
    device_b: Device
    device_token_b: str


def make_cast() -> Cast:
    team_a = CareTeam.objects.create(name="Team A", department="Lunge", region=Region.MIDTJYLLAND)
    team_b = CareTeam.objects.create(name="Team B", department="Hjerte", region=Region.HOVEDSTADEN)
    program_a = Program.objects.create(slug="lung", name="Lung follow-up", condition_code="DC34",
                                       condition_display="Lung cancer")
    program_b = Program.objects.create(slug="hf", name="Heart failure", condition_code="DI50",
                                       condition_display="Heart failure")
    questionnaire = questionnaire_import(resource=load("hf-daily"))
    for program in (program_a, program_b):
        program.questionnaires.add(questionnaire)
        Rule.objects.create(program=program, kind="threshold", name="SpO2 below 92 %",
                            severity=Severity.RED, params={"measure": "spo2", "low": 92})
        Rule.objects.create(program=program, kind="answer", name="Asks to be contacted",
                            severity=Severity.YELLOW,
                            params={"questionnaire": questionnaire.url, "link_id": "contact",
                                    "codes": ["true"]})
    patient_a = make_patient("patient-a", "010150-1111", team_a, program_a, given_name="Alma")
    patient_b = make_patient("patient-b", "020250-2222", team_b, program_b, given_name="Bodil")
    clinician_a = make_user("clinician-a", Role.CLINICIAN)
    clinician_b = make_user("clinician-b", Role.CLINICIAN)
    team_a.members.add(clinician_a)
    team_b.members.add(clinician_b)
    # Lent out since well before the readings tests send (late uploads, Synthea's years-old ones).
    lent_from = timezone.localdate() - timedelta(days=LENT_DAYS_AGO)
    device_a = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial="OX-A", patient=patient_a,
                                     lent_from=lent_from)
    device_b = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial="OX-B", patient=patient_b,
                                     lent_from=lent_from)
    return Cast(
        team_a=team_a, team_b=team_b, program_a=program_a, program_b=program_b,
        questionnaire=questionnaire, patient_a=patient_a, patient_b=patient_b,
        clinician_a=clinician_a, clinician_b=clinician_b,
        quality=make_user("quality", Role.QUALITY),
        admin=make_user("admin", Role.ADMIN, is_staff=True, is_superuser=True),
        device_a=device_a, device_token_a=DeviceToken.issue(device_a)[1],
        device_b=device_b, device_token_b=DeviceToken.issue(device_b)[1],
    )


def response_items(questionnaire: Any, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """A valid response: the given answers (codes, booleans, numbers), the first option or "no"
    for every other required item."""
    def build(items: Any) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if item.type == "group":
                children = build(item.item)
                if children:
                    out.append({"linkId": item.linkId, "item": children})
                continue
            if not item.answerable or (item.linkId not in answers and not item.required):
                continue
            value = answers.get(item.linkId, False if item.type == "boolean" else None)
            if item.type == "boolean":
                answer = {"valueBoolean": value}
            elif item.type == "integer":
                answer = {"valueInteger": value}
            elif item.type == "decimal":
                answer = {"valueDecimal": value}
            else:
                code = value if value is not None else item.answerOption[0].code
                answer = next(o for o in item.answerOption if o.code == code).fhir_value()
            out.append({"linkId": item.linkId, "answer": [answer]})
        return out
    return build(questionnaire.definition.item)


def evaluate(reading_ids: list[int]) -> int:
    """Evaluate readings a test stored directly, the way ingest and the worker do: record them
    as one pending batch, then run the evaluation on that batch. Returns how many it evaluated."""
    from alerts.evaluation import Source as EvaluationSource
    from alerts.evaluation import enqueue
    from alerts.evaluation.readings import readings_evaluate

    batch = enqueue(source=EvaluationSource.READING, after_commit=False, ids=list(reading_ids))
    return readings_evaluate(batch_ids=[batch])


def vital_signs_observation(patient, code="29463-7", value=81.4, unit="kg", identifier=None, **extra) -> dict:
    """An R4 vital-signs Observation of ``patient`` as a device sends it (2 hours old unless
    ``effectiveDateTime`` is given)."""
    resource = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient.pk}"},
        "effectiveDateTime": (timezone.now() - timedelta(hours=2)).replace(microsecond=0).isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
    if identifier:
        resource["identifier"] = [{"system": "urn:dev", "value": identifier}]
    resource.update(extra)
    return resource


def device_token_of(patient: Patient, kind: str, serial: str | None = None) -> tuple[Device, str]:
    """A device of ``kind`` lent to ``patient`` (as the cast's are) and a token for it: a device's
    token sends only what its kind measures (monitoring.models.KIND_MEASURES)."""
    device = Device.objects.create(kind=kind, serial=serial or f"{kind}-{patient.pk}", patient=patient,
                                   lent_from=timezone.localdate() - timedelta(days=LENT_DAYS_AGO))
    return device, DeviceToken.issue(device)[1]
