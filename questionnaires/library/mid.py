"""Minimal important differences (MID) of the shipped instruments' scores, with their sources.

The outcome indicators (outcomes.indicators) call a patient *improved* when the score moved at
least one MID in the better direction since baseline, *worse* when it moved at least one MID
the other way, and *unchanged* otherwise. Every score here is "lower is better".

Keyed by the score's code (the ``code.code`` a response's ``scores`` carry). Sources are in
SOURCES.md as well; values marked *to check* must be confirmed by the programme's clinicians.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class MinimalImportantDifference:
    score_code: str
    instrument: str  # the library slug
    label: str  # short name for pages, e.g. "PHQ-9"
    improvement: float  # points down that count as improved
    worsening: float  # points up that count as worse
    lower_is_better: bool
    source: str


MIDS: dict[str, MinimalImportantDifference] = {m.score_code: m for m in (
    MinimalImportantDifference(
        score_code="44261-6", instrument="phq-9", label="PHQ-9", improvement=5, worsening=5,
        lower_is_better=True,
        source="Löwe B, Unützer J, Callahan CM, Perkins AJ, Kroenke K. Monitoring depression treatment "
               "outcomes with the Patient Health Questionnaire-9. Med Care 2004;42:1194-201 (5 points)."),
    MinimalImportantDifference(
        score_code="70274-6", instrument="gad-7", label="GAD-7", improvement=4, worsening=4,
        lower_is_better=True,
        source="Toussaint A, Hüsing P, Gumz A, et al. Sensitivity to change and minimal clinically "
               "important difference of the GAD-7. J Affect Disord 2020;265:395-401 (4 points)."),
    MinimalImportantDifference(
        score_code="esas-r-total", instrument="esas-r", label="ESAS-r", improvement=3, worsening=4,
        lower_is_better=True,
        source="Hui D, Shamieh O, Paiva CE, et al. Minimal clinically important differences in the "
               "Edmonton Symptom Assessment Scale in cancer patients. Cancer 2015;121:3027-35 (total "
               "symptom distress score: 3 points better, 4 points worse) — to check."),
)}


def mid_for(score_code: str) -> MinimalImportantDifference | None:
    return MIDS.get(score_code)
