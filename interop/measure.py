"""The outcome indicators as FHIR R4 ``Measure`` and their results as ``MeasureReport`` — pure:
the registry's definition, or a computed (already suppressed) IndicatorView, in; a dict out.

- Measure: one per indicator, its id the indicator's code. ``scoring`` proportion (shares),
  ratio (alerts per 100 patient-days) or continuous-variable (score change, hours);
  ``improvementNotation`` from "higher is better"; the population criteria as plain-text
  expressions (the definition in words — the computation is outcomes.indicators).
- MeasureReport: ``type: summary``, ``period`` = the treatment-start period asked for; one group
  with the numerator/denominator counts and ``measureScore``, and one ``stratifier`` per breakdown
  (region, department, team, quarter, sex, age band). The same suppression as the pages: a
  count of 1–4 is left out (FHIR has no "<5"), and a hidden stratum carries no count and no
  score, only the data-absent-reason extension saying why.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from outcomes.dashboard import ROOT, IndicatorView, Row
from outcomes.indicators import INDICATORS, Indicator, Kind, min_patients

MEASURE_BASE = "https://proplatform.dk/fhir/Measure"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
SCORING_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-scoring"
STRATIFIER_SYSTEM = "https://proplatform.dk/fhir/CodeSystem/indicator-stratifier"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

_SCORING = {Kind.PROPORTION: "proportion", Kind.RATE: "ratio", Kind.DISTRIBUTION: "continuous-variable"}
STRATIFIERS = (("region", "Region"), ("department", "Department"), ("team", "Team"),
               ("quarter", "Quarter of treatment start"), ("sex", "Sex"), ("age-band", "Age at treatment start"))


def measure_url(indicator: Indicator) -> str:
    return f"{MEASURE_BASE}/{indicator.code}"


def indicator_for_reference(reference: str) -> Indicator | None:
    """The indicator a ``measure`` search value names: its canonical url, ``Measure/<id>`` or the id."""
    code = reference.split("|")[0].rstrip("/").rsplit("/", 1)[-1]
    return INDICATORS.get(code)


def _population(code: str, description: str) -> dict[str, Any]:
    return {"code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]}, "description": description,
            "criteria": {"language": "text/plain", "expression": description}}


def indicator_to_measure(indicator: Indicator) -> dict[str, Any]:
    if indicator.kind == Kind.DISTRIBUTION:
        populations = [_population("initial-population", str(indicator.denominator)),
                       _population("measure-population", str(indicator.denominator)),
                       _population("measure-population-exclusion", str(indicator.exclusions)),
                       _population("measure-observation", str(indicator.numerator))]
    else:
        populations = [_population("numerator", str(indicator.numerator)),
                       _population("denominator", str(indicator.denominator)),
                       _population("denominator-exclusion", str(indicator.exclusions))]
    measure: dict[str, Any] = {
        "resourceType": "Measure", "id": indicator.code, "url": measure_url(indicator), "version": "1",
        "name": "".join(part.title() for part in indicator.code.split("-")), "title": str(indicator.title),
        "status": "active", "experimental": False, "publisher": "proplatform",
        "description": f"{indicator.numerator} / {indicator.denominator}. {indicator.source}",
        "scoring": {"coding": [{"system": SCORING_SYSTEM, "code": _SCORING[indicator.kind]}]},
        "improvementNotation": {"coding": [{"system": IMPROVEMENT_SYSTEM,
                                            "code": "increase" if indicator.higher_is_better else "decrease"}]},
        "group": [{
            "description": str(indicator.title), "population": populations,
            "stratifier": [{"code": {"coding": [{"system": STRATIFIER_SYSTEM, "code": code}], "text": text},
                            "description": text} for code, text in STRATIFIERS],
        }],
    }
    if indicator.standard is not None:
        measure["guidance"] = (f"Standard: {'≥' if indicator.higher_is_better else '≤'} "
                               f"{_score_value(indicator, indicator.standard)} {_unit(indicator)}")
    return measure


def _unit(indicator: Indicator) -> str:
    return "%" if indicator.kind == Kind.PROPORTION else str(indicator.unit_label)


def _score_value(indicator: Indicator, value: float) -> float:
    return round(100 * value if indicator.kind == Kind.PROPORTION else value, 3)


def _count(n: float) -> int | None:
    n = round(n)
    return None if 1 <= n < min_patients() else n


def _populations(indicator: Indicator, row: Row) -> list[dict[str, Any]]:
    f = row.figure
    if indicator.kind == Kind.DISTRIBUTION:
        pairs: list[tuple[str, float]] = [("measure-population", f.n_units),
                                                       ("measure-observation", f.n_units)]
    else:
        pairs = [("numerator", f.numerator), ("denominator", f.denominator)]
    out = []
    for code, n in pairs:
        entry: dict[str, Any] = {"code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]}}
        count = _count(n) if row.shown else None
        if count is not None:
            entry["count"] = count
        out.append(entry)
    return out


def _score(indicator: Indicator, row: Row) -> dict[str, Any] | None:
    if not row.shown or row.figure.value is None:
        return None
    return {"value": _score_value(indicator, row.figure.value), "unit": _unit(indicator)}


def _stratum(indicator: Indicator, row: Row, key: str) -> dict[str, Any]:
    stratum: dict[str, Any] = {"value": {"coding": [{"system": f"{STRATIFIER_SYSTEM}/{key}", "code": str(
        row.key[-1] if isinstance(row.key, tuple) else row.key)}], "text": row.label},
        "population": _populations(indicator, row)}
    score = _score(indicator, row)
    if score is not None:
        stratum["measureScore"] = score
    else:
        stratum["extension"] = [{"url": DATA_ABSENT, "valueCode": "masked"}]
    return stratum


def _org_rows(view: IndicatorView, level: str) -> list[Row]:
    return [view._row(node) for node in view.parent if isinstance(node, tuple) and node[0] == level]


def view_to_measure_report(view: IndicatorView, *, period_start: date | None, period_end: date | None,
                           now: datetime) -> dict[str, Any]:
    indicator = view.indicator
    national = view.national()
    group: dict[str, Any] = {"population": _populations(indicator, national)}
    score = _score(indicator, national)
    if score is not None:
        group["measureScore"] = score
    breakdowns = {
        "region": _org_rows(view, "region"), "department": _org_rows(view, "department"),
        "team": _org_rows(view, "team"), "quarter": view.quarter_table().rows, "sex": view.sex_table().rows,
        "age-band": view.age_table().rows}
    group["stratifier"] = [
        {"code": [{"coding": [{"system": STRATIFIER_SYSTEM, "code": key}], "text": text}],
         "stratum": [_stratum(indicator, r, key) for r in breakdowns[key]]}
        for key, text in STRATIFIERS]
    assert view.position == ROOT  # a report is always national, with every level as a stratifier
    period: dict[str, str] = {}
    if period_start:
        period["start"] = period_start.isoformat()
    if period_end:
        period["end"] = period_end.isoformat()
    if not period:
        period["end"] = view.today.isoformat()
    return {
        "resourceType": "MeasureReport",
        "id": f"{indicator.code}-{period.get('start', 'start')}-{period.get('end', 'end')}",
        "status": "complete", "type": "summary", "measure": measure_url(indicator),
        "date": now.isoformat(), "period": period,
        "improvementNotation": {"coding": [{"system": IMPROVEMENT_SYSTEM,
                                            "code": "increase" if indicator.higher_is_better else "decrease"}]},
        "group": [group],
    }
