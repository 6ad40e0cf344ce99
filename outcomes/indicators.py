"""Outcome indicators (issue 23): each one defined once, here, and read by the pages, the
downloads and FHIR Measure.

An indicator is computed from *units* — one per treatment episode, alert or response, as the
indicator says — each tied to the episode (and so to the programme, team, department, region,
sex and age band) it belongs to. ``aggregate`` turns a set of units into a figure; the
dashboard groups units by the drill-down tree and suppresses small groups
(outcomes.suppression.suppress_tree).

Rules every indicator follows:
- Patients who withdrew from secondary use are never counted (``episodes_in_scope``).
- An episode belongs to the team that owns it now: a patient who changed team counts for the new
  team only, and once nationally (the episode has one ``care_team``).
- Days are Danish calendar days (outcomes.timepoints).
- Only episodes that have started by ``today`` count.

Standards here are *illustrative levels set locally*, each marked so in its source: the
programme's steering group sets the real ones, as the Danish clinical quality databases do.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from alerts.models import Severity
from outcomes import indicator_sql
from outcomes.indicator_core import (  # noqa: F401 (the indicators' types, re-exported: one import for callers)
    AGE_BANDS,
    DANISH_TIME,
    DEFAULT_RED_ACK_PROMISE,
    Cell,
    Dataset,
    EpisodeFacts,
    Figure,
    Filters,
    Indicator,
    Kind,
    Unit,
    age_band,
    aggregate,
    cells_from_units,
    episodes_in_scope,
    fmt,
    local_day,
    min_patients,
    quarter_of,
)
from outcomes.indicator_units import (  # noqa: F401
    alert_rate_units,
    classify_change,
    missed_questionnaire_units,
    no_action_units,
    prom_change_units,
    reading_adherence_units,
    red_ack_on_time_units,
    red_hours_units,
    response_rate_units,
    review_on_time_units,
    score_pair,
)
from outcomes.timepoints import DEFAULT_TIMEPOINTS
from questionnaires.library.mid import MIDS

# --- the registry ------------------------------------------------------------------------------

# No indicator has a standard level yet: none of these platform measures has a published Danish
# standard (the clinical quality databases set theirs for clinical processes and outcomes, not for
# questionnaire response rates or alert handling), and a level made up here would be read as one.
# A standard is added only with its source (``Indicator.standard_source``, checked by a test);
# until then the pages say "ingen fastsat standard".
NO_STANDARD = "No standard set: none has been published for this measure."
CHANGE_CATEGORIES = (("improved", _("Improved")), ("unchanged", _("Unchanged")), ("worse", _("Worse")))


def _build() -> dict[str, Indicator]:
    out: list[Indicator] = []
    for t in DEFAULT_TIMEPOINTS:
        out.append(Indicator(
            code=f"response-rate-{t.code}", group=_("Response"),
            title=fmt(_("Response rate at %(timepoint)s"), {"timepoint": t.label}), kind=Kind.PROPORTION,
            unit_label="%",
            numerator=fmt(_("Episodes with at least one completed questionnaire between day %(a)s and %(b)s "
                        "after the treatment start"), {"a": t.start_day, "b": t.end_day}),
            denominator=_("Episodes whose window has closed"),
            exclusions=_("Patients who withdrew from secondary use; windows still open"),
            source=f"Platform data (questionnaire responses). {NO_STANDARD}",
            units=response_rate_units(t), sql=indicator_sql.response_rate_sql(t), batch="response-rate",
            batch_args=(t,)))
    for mid in MIDS.values():
        for t in DEFAULT_TIMEPOINTS:
            if t.code == "baseline":
                continue
            out.append(Indicator(
                code=f"prom-change-{mid.instrument}-{t.code}", group=_("Patient-reported outcomes"),
                title=fmt(_("%(instrument)s change from baseline to %(timepoint)s"),
                          {"instrument": mid.label, "timepoint": t.label}),
                kind=Kind.DISTRIBUTION, unit_label=_("points"), headline="mean",
                numerator=fmt(_("Score at %(timepoint)s (nearest the target day) minus the baseline score "
                            "(last before treatment start)"), {"timepoint": t.label}),
                denominator=_("Episodes with both a baseline and a follow-up score"),
                exclusions=_("Patients who withdrew from secondary use; no baseline score; no score in "
                             "the follow-up window; responses with too many unanswered items (no score)"),
                source=f"Minimal important difference: {mid.source} Lower scores are better.",
                higher_is_better=not mid.lower_is_better, categories=CHANGE_CATEGORIES,
                units=prom_change_units(mid, t), sql=indicator_sql.prom_change_sql(mid, t)))
    for severity, label in ((None, _("all")), (Severity.RED, _("red")), (Severity.YELLOW, _("yellow"))):
        out.append(Indicator(
            code=f"alert-rate-{severity or 'all'}", group=_("Alerts"),
            title=fmt(_("Alerts per 100 patient-days (%(severity)s)"), {"severity": label}), kind=Kind.RATE,
            unit_label=_("per 100 patient-days"),
            numerator=_("Alerts raised during the episode"),
            denominator=_("Days from treatment start to the episode's end or yesterday"),
            exclusions=_("Patients who withdrew from secondary use"),
            source="Platform data (alerts). No standard: a rate is compared, not judged.",
            higher_is_better=False, units=alert_rate_units(severity), sql=indicator_sql.alert_rate_sql(severity),
            batch="alert-rate", batch_args=(severity, None)))
    from alerts.rules import KINDS  # the rule kinds the platform has, one indicator each
    for kind in sorted(KINDS):
        out.append(Indicator(
            code=f"alert-rate-kind-{kind}", group=_("Alerts"), key=False,
            title=fmt(_("Alerts per 100 patient-days from “%(kind)s” rules"), {"kind": kind}), kind=Kind.RATE,
            unit_label=_("per 100 patient-days"),
            numerator=fmt(_("Alerts raised during the episode by rules of the kind “%(kind)s”"), {"kind": kind}),
            denominator=_("Days from treatment start to the episode's end or yesterday"),
            exclusions=_("Patients who withdrew from secondary use"),
            source="Platform data (alerts). No standard: a rate is compared, not judged.",
            higher_is_better=False, units=alert_rate_units(None, kind),
            sql=indicator_sql.alert_rate_sql(None, kind), batch="alert-rate", batch_args=(None, kind)))
    out += [
        Indicator(
            code="alert-no-action", group=_("Alerts"), title=_("Alerts resolved as “no action needed”"),
            kind=Kind.PROPORTION, unit_label="%", higher_is_better=False,
            numerator=_("Resolved alerts whose outcome is “no action needed”"),
            denominator=_("Resolved alerts"), exclusions=_("Open and acknowledged alerts"),
            source="Platform data (alerts). No standard: a high share suggests rules that alert too often.",
            units=no_action_units, sql=indicator_sql.no_action_sql),
        Indicator(
            code="red-ack-hours", group=_("Alerts"), title=_("Time from red alert to acknowledgement"),
            kind=Kind.DISTRIBUTION, unit_label=_("hours"), headline="median", higher_is_better=False,
            numerator=_("Hours from raised to acknowledged, median and 90th percentile"),
            denominator=_("Acknowledged red alerts"), exclusions=_("Red alerts not yet acknowledged"),
            source=f"Platform data (alerts). {NO_STANDARD}", units=red_hours_units("acknowledged_at"),
            sql=indicator_sql.red_hours_sql("acknowledged_at")),
        Indicator(
            code="red-resolve-hours", group=_("Alerts"), title=_("Time from red alert to resolution"),
            kind=Kind.DISTRIBUTION, unit_label=_("hours"), headline="median", higher_is_better=False,
            numerator=_("Hours from raised to resolved, median and 90th percentile"),
            denominator=_("Resolved red alerts"), exclusions=_("Red alerts not yet resolved"),
            source="Platform data (alerts). No standard set.", units=red_hours_units("resolved_at"),
            sql=indicator_sql.red_hours_sql("resolved_at")),
        Indicator(
            code="red-ack-on-time", group=_("Alerts"), title=_("Red alerts acknowledged within the promise"),
            kind=Kind.PROPORTION, unit_label="%",
            numerator=_("Red alerts acknowledged before the team's escalation starts (30 minutes by default)"),
            denominator=_("Red alerts whose promised time has passed"),
            exclusions=_("Red alerts whose promised time has not yet passed"),
            source=f"Promise: the team's escalation policy (alerts.EscalationPolicy). {NO_STANDARD}",
            units=red_ack_on_time_units, sql=indicator_sql.red_ack_on_time_sql),
        Indicator(
            code="review-on-time", group=_("Review"), title=_("Responses reviewed within the promised time"),
            kind=Kind.PROPORTION, unit_label="%",
            numerator=_("Responses reviewed before their due time (the programme's promised working days)"),
            denominator=_("Responses to review whose due time has passed, or that were reviewed"),
            exclusions=_("Responses that need no review; responses not yet due and not reviewed"),
            source=f"Platform data (review queue). {NO_STANDARD}", units=review_on_time_units,
            sql=indicator_sql.review_on_time_sql),
        Indicator(
            code="reading-adherence", group=_("Adherence"), title=_("Days with at least one measurement"),
            kind=Kind.PROPORTION, unit_label="%",
            numerator=_("Days in the episode with a device lent and at least one reading"),
            denominator=_("Days in the episode with a device lent, up to yesterday"),
            exclusions=_("Readings marked erroneous; patients without a device"),
            source=f"Platform data (readings, device lendings). The interval treats days as independent. "
                   f"{NO_STANDARD}", units=reading_adherence_units,
            sql=indicator_sql.reading_adherence_sql),
        Indicator(
            code="missed-questionnaires", group=_("Adherence"), title=_("Missed questionnaires per 100 expected"),
            kind=Kind.PROPORTION, unit_label=_("per 100 expected"), higher_is_better=False,
            numerator=_("Scheduled questionnaires that were missed"),
            denominator=_("Scheduled questionnaires whose window has closed (answered or missed)"),
            exclusions=_("Paused and still open occurrences"),
            source=f"Platform data (schedules). {NO_STANDARD}", units=missed_questionnaire_units,
            sql=indicator_sql.missed_questionnaire_sql),
    ]
    return {i.code: i for i in out}


INDICATORS: dict[str, Indicator] = _build()


def indicator_get(code: str) -> Indicator | None:
    return INDICATORS.get(code)

