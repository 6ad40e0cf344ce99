"""``{% patient_header patient %}``: CPR, age, programme, team and treatment start at the top of
every clinician page about a patient (the page's view has already checked and audited access)."""

from typing import Any

from django import template

from patients.models import Patient
from patients.selectors import patient_header as header_of

register = template.Library()


@register.inclusion_tag("patients/_header.html")
def patient_header(patient: Patient) -> dict[str, Any]:
    return {"h": header_of(patient)}
