"""Read-only questions about patients that several apps ask."""

import re
from dataclasses import dataclass
from datetime import date

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models import Patient, Program, Region, TreatmentEpisode, age_on


def patient_in_capital_region(patient: Patient) -> bool:
    """Whether every current episode of the patient's is with a Capital Region team: there, 1813
    (the Akuttelefon) is the out-of-hours number; elsewhere each region has its own."""
    today = timezone.localdate()
    regions = set(patient.episodes.filter(Q(end=None) | Q(end__gte=today))  # a planned end still counts
                  .values_list("care_team__region", flat=True))
    return regions == {Region.HOVEDSTADEN}


def when_to_call(patient: Patient) -> str:
    """What a patient is told to do if they feel very ill, with their region's out-of-hours number."""
    if patient_in_capital_region(patient):
        return _("If you feel very ill, do not wait: call 112. Otherwise call your doctor, or outside opening "
                 "hours the Akuttelefon on 1813.")
    return _("If you feel very ill, do not wait: call 112. Otherwise call your doctor, or outside opening hours "
             "the out-of-hours doctor (lægevagten) in your region.")


def program_for_receipt(patient: Patient, questionnaire_url: str) -> Program | None:
    """The programme whose phone number and texts a patient's receipt uses: a current programme
    of the patient's that lists the questionnaire, else any current one, else None."""
    today = timezone.localdate()
    current = (Program.objects.filter(Q(episodes__end=None) | Q(episodes__end__gte=today), episodes__patient=patient)
               .distinct().order_by("pk"))
    return current.filter(questionnaires__url=questionnaire_url).first() or current.first()


@dataclass(frozen=True)
class PatientHeader:
    patient: Patient
    age: int
    episodes: list[TreatmentEpisode]


def patient_header(patient: Patient, *, today: date | None = None) -> PatientHeader:
    """What the top of every clinician page about a patient says: CPR, age, programme, team and
    treatment start (current episodes first). The page's own access check has already run."""
    today = today or timezone.localdate()
    episodes = sorted(patient.episodes.select_related("program", "care_team").order_by("-treatment_start"),
                      key=lambda e: e.end is not None and e.end < today)  # stable: newest first within
    return PatientHeader(patient=patient, age=age_on(patient.birth_date, today), episodes=episodes)


# Digits with an optional dash or space after the birth date ("010150 1111" is how many read it
# out on the phone). ASCII digits only: \d would take other scripts' digits.
_CPR_LIKE = re.compile(r"^[0-9]{6}[- ]?[0-9]{0,4}$|^[0-9]{1,10}$")


def looks_like_cpr(text: str) -> bool:
    """Digits, with or without the dash after the birth date: searched as (part of) a CPR
    number — and never written anywhere, not even in the audit trail."""
    return bool(_CPR_LIKE.match(text.strip()))


def patient_search_q(text: str) -> Q:
    """A CPR number (whole, or its start) with or without the dash, or a name: every word must
    be in the given or the family name, in any order ("hansen anna" finds Anna Hansen)."""
    text = text.strip()
    if looks_like_cpr(text):
        digits = text.replace("-", "").replace(" ", "")
        dashed = digits[:6] + "-" + digits[6:] if len(digits) > 6 else digits
        # Stored as written at registration: most with the dash, some without.
        return Q(cpr__startswith=dashed) | Q(cpr__startswith=digits)
    q = Q()
    for word in text.split():
        q &= Q(given_name__icontains=word) | Q(family_name__icontains=word)
    return q
