import uuid
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from alerts.forms import AssignForm, OverrideForm, ResolveForm, RevertForm, SnoozeForm
from alerts.models import Alert, AlertFinding, RuleOverride
from alerts.params_words import params_in_words, questionnaire_titles
from alerts.rules import snooze_target
from alerts.selectors import (
    alerts_resolved_for_patient,
    alerts_unresolved_for_patient,
    assignable_clinicians,
    rule_overrides_for_patient,
    rules_for_patient,
    snoozes_active,
)
from alerts.selectors_readings import reading_measures_for, thresholds_for
from audit.models import Action
from audit.services import audit_record
from clinic.timeline import patient_timeline, timeline_days
from monitoring.charts import reading_chart_svg
from monitoring.measures import MEASURES
from monitoring.models import Reading
from outcomes.peers import patient_peer_comparisons
from patients.access import clinician_patient_or_404
from patients.models import Patient
from questionnaires.forms import ReviewForm
from questionnaires.models import QuestionnaireResponse, ResponseReview
from schedules.selectors import occurrences_for

# How far back the chart beside an alert reaches before the oldest reading behind it, so the
# clinician sees the patient's usual level next to the values that fired.
CHART_CONTEXT = timedelta(days=14)


@login_required
def patient_detail(request: AuthenticatedHttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    patient = clinician_patient_or_404(request, patient_id, resource=f"Patient/{patient_id} (page)")
    return patient_page(request, patient)


def _ids(evidence: dict[str, Any], one: str, many: str) -> list[int]:
    """Ids a finding's evidence names: kinds use ``reading_id``/``response_id`` for one source,
    ``reading_ids``/``response_ids`` for several (windows, combinations)."""
    found = [evidence[one]] if isinstance(evidence.get(one), int) else []
    found += [i for i in evidence.get(many) or [] if isinstance(i, int)]
    return found


def _alert_charts(patient: Patient, reading_ids: set[int], now: datetime) -> list[dict[str, Any]]:
    """One trend chart per measure behind the alert, its readings ringed."""
    behind = list(Reading.objects.filter(patient=patient, pk__in=reading_ids).only("measure", "effective_at"))
    charts = []
    for code in sorted({r.measure for r in behind}):
        measure = MEASURES.get(code)
        if measure is None:
            continue
        oldest = min(r.effective_at for r in behind if r.measure == code)
        start, end = min(oldest, now) - CHART_CONTEXT, max(now, oldest)
        readings = list(Reading.objects.filter(patient=patient, measure=code, effective_at__gte=start,
                                               effective_at__lte=end))
        label = _("%(measure)s: the readings behind the alert are ringed") % {"measure": measure.label}
        charts.append({"measure": measure, "label": label,
                       "svg": reading_chart_svg(measure=measure, readings=readings,
                                                thresholds=thresholds_for(patient=patient, measure=code),
                                                start=start, end=end, label=label,
                                                highlight={r.pk for r in behind if r.measure == code})})
    return charts


def _snooze_form(alert: Alert) -> SnoozeForm | None:
    """The snooze offered inside an alert's panel: only for an alert whose findings a snooze can
    cover (a measured level, ``alerts.rules.snooze_target``), prefilled with that measure. Its
    "also resolve" box is never ticked for the nurse."""
    target = snooze_target(alert.rule.kind, alert.evidence)
    if target is None:
        return None
    measure, component = target
    return SnoozeForm(prefix=f"snooze-{alert.pk}", with_alert=True,
                      initial={"measure": measure, "component": component})


def patient_page(request: AuthenticatedHttpRequest, patient: Patient, *, bound: dict[str, forms.Form] | None = None,
                 status: int = 200) -> HttpResponse:
    """The clinician's patient page. ``bound`` holds a form that failed validation (keyed like
    the page's forms, e.g. ``resolve-12``) so its errors show next to its fields."""
    bound = bound or {}
    now = timezone.now()
    clinicians = assignable_clinicians(patient)

    def form(key: str, make: Any) -> Any:
        return bound.get(key) or make()

    open_alerts = []
    response_ids_behind: set[int] = set()
    for alert in alerts_unresolved_for_patient(patient):
        findings: list[AlertFinding] = list(alert.findings.all())
        reading_ids = {i for f in findings for i in _ids(f.evidence, "reading_id", "reading_ids")}
        response_ids = {i for f in findings for i in _ids(f.evidence, "response_id", "response_ids")}
        response_ids_behind |= response_ids
        pk = alert.pk
        open_alerts.append({
            "alert": alert, "findings": findings, "response_ids": response_ids,
            "new_evidence": alert.acknowledged_at is not None and alert.updated_at > alert.acknowledged_at,
            "charts": _alert_charts(patient, reading_ids, now) if reading_ids else [],
            "assign_form": form(f"assign-{pk}", lambda a=alert: AssignForm(
                prefix=f"assign-{a.pk}", clinicians=clinicians,
                initial={"assignee": a.assigned_to_id, "current": a.assigned_to_id})),
            "resolve_form": form(f"resolve-{pk}", lambda a=alert: ResolveForm(prefix=f"resolve-{a.pk}")),
            "snooze_form": form(f"snooze-{pk}", lambda a=alert: _snooze_form(a)),
        })

    responses = list(patient.responses.filter(status="completed").select_related("questionnaire", "author")
                     .order_by("-authored_at")[:10])
    # Answers not reviewed yet are on the page whatever their age: the review list links here,
    # and "Markér som gennemset" sits beside each of them.
    responses += list(patient.responses.filter(status="completed", review__isnull=True, review_due_at__isnull=False)
                      .exclude(pk__in=[r.pk for r in responses]).select_related("questionnaire", "author")
                      .order_by("-authored_at")[:50])
    responses.sort(key=lambda r: r.authored_at, reverse=True)
    behind = list(QuestionnaireResponse.objects.filter(patient=patient, pk__in=response_ids_behind)
                  .select_related("questionnaire"))
    responses_by_id = {r.pk: r for r in behind}
    for entry in open_alerts:
        entry["responses"] = [responses_by_id[i] for i in sorted(entry["response_ids"]) if i in responses_by_id]
    timeline = patient_timeline(patient, days=timeline_days(request.GET.get("days")), now=now)
    shown = sorted({r.pk for r in responses} | set(responses_by_id) | set(timeline.response_ids))
    # The answers on this page are read now: one audit row per response. A read, nothing more:
    # "seen by your care team" is only ever a ResponseReview someone wrote (questionnaires.review).
    for response_id in shown:
        audit_record(user=request.user, action=Action.READ, patient_id=patient.pk, request=request,
                     resource=f"QuestionnaireResponse/{response_id} (patient page)")
    reviews = {rv.response_id: rv for rv in ResponseReview.objects.filter(response_id__in=[r.pk for r in responses])
               .select_related("reviewed_by")}

    current = {o.rule_id: o for o in RuleOverride.objects.filter(patient=patient, ended_at=None)}
    patient_rules = list(rules_for_patient(patient))
    titles = questionnaire_titles([r.params.get("questionnaire") for r in patient_rules])
    override_history = list(rule_overrides_for_patient(patient))
    for o in override_history:
        # the override in words, for the template: an attribute of this row only
        o.words = params_in_words(o.params, titles, measure=o.rule.params.get("measure"))  # type: ignore[attr-defined]
    rules = []
    for rule in patient_rules:
        override = current.get(rule.pk)
        rules.append({
            "rule": rule, "override": override, "words": params_in_words(rule.params, titles),
            "override_words": params_in_words(override.params, titles, measure=rule.params.get("measure"))
            if override else [],
            "form": form(f"override-{rule.pk}", lambda r=rule, o=override: OverrideForm(
                prefix=f"override-{r.pk}", rule=r, current=o.params if o else None)),
            "revert_form": form(f"revert-{rule.pk}", lambda r=rule: RevertForm(prefix=f"revert-{r.pk}"))
            if override else None,
        })

    # "Patients like me" (outcomes.peers), the same on the patient's and the clinician's page.
    peers = patient_peer_comparisons(patient_id=patient.pk)
    return render(request, "patients/detail.html", {
        "peers": peers,
        "patient": patient,
        "episodes": patient.episodes.select_related("program", "care_team"),
        "open_alerts": open_alerts,
        "timeline": timeline,
        "resolved_alerts": alerts_resolved_for_patient(patient),
        "snoozes": [(sn, MEASURES.get(sn.measure)) for sn in snoozes_active(patient, now)],
        "snooze_form": form("snooze-new", lambda: SnoozeForm(prefix="snooze-new")),
        "rules": rules,
        "override_history": override_history,
        "reading_measures": [MEASURES[code] for code in reading_measures_for(patient)],
        "responses": [(r, reviews.get(r.pk), None if r.pk in reviews else form(
            f"review-{r.pk}", lambda r=r: ReviewForm(prefix=f"review-{r.pk}"))) for r in responses],
        "can_review": request.user.role == Role.CLINICIAN,
        "now": now,
        "occurrences": occurrences_for(patient).filter(due_at__gte=now - timedelta(days=30))
        .order_by("due_at")[:12],
        "pauses": patient.pauses.filter(withdrawn=False)
        .filter(Q(ends_on=None) | Q(ends_on__gte=timezone.localdate())).order_by("starts_on"),
    }, status=status)
