"""What alerts' rules say about a patient's readings, for the reading pages (clinic.views_readings)
and the patient page: the measures the rules watch, the limits to draw on a chart, whether one
reading is outside the patient's limits, and the readings the rules have not looked at yet. Here,
not in monitoring: monitoring lies below alerts (docs/architecture.md, "Layers")."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from alerts.evaluation import Source as EvaluationSource
from alerts.evaluation import pending_object_ids
from alerts.models import Rule, RuleOverride, Severity
from alerts.rules import KINDS, merged_params, parse_params
from alerts.rules.context import Context
from alerts.rules.news2 import CHART as NEWS2_CHART
from alerts.selectors import rules_running_for
from monitoring.measures import MEASURES, component_labels
from monitoring.models import Reading
from monitoring.selectors import Threshold
from patients.models import Patient


def readings_unevaluated_ids() -> set[int]:
    """Ids of the stored readings whose rules have not run yet (listed in the evaluation inbox)."""
    return pending_object_ids(source=EvaluationSource.READING)


def reading_measures_for(patient: Patient) -> list[str]:
    """The measures to offer on a patient's trend pages: those with readings and those the
    patient's programmes have limits for, in the registry's order."""
    present = set(Reading.objects.filter(patient=patient).values_list("measure", flat=True).distinct())
    present |= _watched_measures(patient)
    return [code for code in MEASURES if code in present]


def _watched_measures(patient: Patient) -> set[str]:
    """The measures any active rule of the patient's programmes watches: threshold, bands and
    change rules name one; a combination rule names its reading's; NEWS2 watches its chart's."""
    watched: set[str | None] = set()
    for kind, p in rules_running_for(patient.pk, timezone.localdate()).values_list("kind", "params"):
        if kind == "news2":  # its chart's measures, named by none of its parameters
            watched |= {band.measure for band in NEWS2_CHART}
        elif isinstance(p, dict):
            reading = p.get("reading")
            watched.add(p.get("measure") or (reading.get("measure") if isinstance(reading, dict) else None))
    return {code for code in watched if code in MEASURES}


def _threshold_rules(patient: Patient, today: datetime | None = None) -> dict[str, list[tuple[Rule, object]]]:
    """Active threshold and bands rules of the programmes the patient is in today, parsed, by
    measure. The same selection as ``alerts.services.rules_for``, so the lines drawn are the
    limits that actually raise alerts."""
    day = timezone.localdate(today) if today else timezone.localdate()
    rules = list(rules_running_for(patient.pk, day).filter(kind__in=("threshold", "bands")).distinct().order_by("pk"))
    # The patient's own limits where a clinician set them (RuleOverride), as the evaluation
    # merges them (alerts.services.Evaluator.params): the limits drawn and told are the ones
    # that raise this patient's alerts.
    overrides = dict(RuleOverride.objects.filter(rule__in=rules, patient=patient, ended_at=None)
                     .values_list("rule_id", "params"))
    by_measure: dict[str, list[tuple[Rule, object]]] = {}
    for rule in rules:
        params = parse_params(rule.kind, merged_params(rule.params, overrides.get(rule.pk)))
        # threshold and bands Params (the kinds selected above) have .measure; parse_params is typed
        # as their base model
        by_measure.setdefault(params.measure, []).append((rule, params))  # type: ignore[attr-defined]
    return by_measure


def reading_beyond_limits(*, patient: Patient, reading: Reading) -> bool:
    """Whether one of the patient's threshold or bands rules (with the patient's own limits) finds
    ``reading`` outside its limits — by the rule's own comparison (its ``evaluate_reading``), so
    that a patient is told "your care team is told" exactly when a rule raises."""
    ctx = Context(now=timezone.now())
    return any(KINDS[rule.kind].evaluate_reading(params, reading, ctx) is not None
               for rule, params in _threshold_rules(patient).get(reading.measure, []))


def thresholds_for(*, patient: Patient, measure: str) -> list[Threshold]:
    """The limits to draw on the patient's chart of ``measure``; the same limit from two
    programmes is drawn once (the stricter severity is not a question a line can answer)."""
    parts = component_labels(MEASURES[measure])
    seen: dict[tuple[str, Decimal, str | None], Threshold] = {}

    def add(bound: str, value: Any, rule: Rule, severity: str, component: str | None) -> None:
        if value is not None and (bound, value, component) not in seen:
            seen[(bound, value, component)] = Threshold(bound=bound, value=Decimal(value), rule_name=rule.name,
                                                        severity=severity, component=component)

    for rule, params in _threshold_rules(patient).get(measure, []):
        if rule.kind == "bands":  # four limits per part, each with its own colour (alerts.rules.bands)
            # bands.Params, held as the base model (above)
            for bands, component in ((params.bands, parts and parts[0]),  # type: ignore[attr-defined]
                                     (params.bands2, parts and parts[1])):  # type: ignore[attr-defined]
                if bands is not None:
                    for name in ("alert_low", "warning_low", "warning_high", "alert_high"):
                        add(name.split("_")[1], getattr(bands, name), rule,
                            Severity.RED if name.startswith("alert") else Severity.YELLOW, component)
            continue
        part = getattr(params, "component", None)
        component = None if parts is None else parts[1] if part == "value2" else parts[0]
        for bound in ("low", "high"):
            add(bound, getattr(params, bound), rule, rule.severity, component)
    return sorted(seen.values(), key=lambda t: t.value)
