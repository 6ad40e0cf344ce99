"""'My answers': the patient's responses over time, scores as a chart and a table, and for each
response whether the care team has seen it."""

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation

from accounts.decorators import role_required
from accounts.models import Role
from audit.models import Action, AuditEvent
from audit.models import Outcome as AuditOutcome
from patients.access import own_patient_or_404
from questionnaires.charts import time_series_svg
from questionnaires.models import QuestionnaireResponse, ResponseStatus


def response_seen_resource(response_id: int) -> str:
    """The audit resource written when a clinician's patient page shows a response's answers."""
    return f"QuestionnaireResponse/{response_id} (patient page)"


def responses_seen_at(patient_id: Any, response_ids: list[int]) -> dict[int, datetime]:
    """When each response was first *seen by the care team* — the date "Seen by your care team
    on …" shows the patient. A response counts as seen at the earliest of:

    - a clinician's patient page showed its answers (the page audits each response it shows as
      ``response_seen_resource``; it lists the latest answers and those behind open alerts);
    - a clinician acknowledged or resolved an alert *after* a finding on this response was added
      to it (an alert acknowledged before the response arrived says nothing about the response).

    Only people with the clinician role count: an administrator opening a record for support is
    not the care team looking at the answers. Responses not in the result are not seen yet.
    Both sources are rows that are never changed (audit, alert events), so a date, once shown,
    never moves or disappears."""
    from alerts.models import AlertEvent, AlertFinding, EventKind

    if not response_ids:
        return {}
    seen: dict[int, datetime] = {}

    def earliest(response_id: int, at: datetime) -> None:
        if response_id not in seen or at < seen[response_id]:
            seen[response_id] = at

    by_resource = {response_seen_resource(pk): pk for pk in response_ids}
    for resource, at in (AuditEvent.objects.filter(
            patient_ref=patient_id, role=Role.CLINICIAN, action=Action.READ, outcome=AuditOutcome.ALLOWED,
            resource__in=list(by_resource)).values_list("resource", "at")):
        earliest(by_resource[resource], at)
    by_source = {f"response:{pk}": pk for pk in response_ids}
    findings = list(AlertFinding.objects.filter(alert__patient_id=patient_id, source_key__in=list(by_source))
                    .values_list("alert_id", "source_key", "found_at"))
    if findings:
        events = list(AlertEvent.objects.filter(
            alert_id__in={f[0] for f in findings}, kind__in=[EventKind.ACKNOWLEDGED, EventKind.RESOLVED],
            by__role=Role.CLINICIAN).values_list("alert_id", "at"))
        for alert_id, source_key, found_at in findings:
            for event_alert, at in events:
                if event_alert == alert_id and at >= found_at:
                    earliest(by_source[source_key], at)
    return seen


def _score_label(score: dict[str, Any]) -> str:
    return score.get("code", {}).get("display") or score.get("code", {}).get("code", "?")


def _band_label(band: dict[str, Any] | None) -> str:
    if not band:
        return ""
    language = (translation.get_language() or "da")[:2]
    return band.get(f"display_{language}") or band.get("display_da") or ""


def _score_axis(responses: list[QuestionnaireResponse], url: str) -> dict[str, Any]:
    """The whole possible range of the first scale, ticked at its severity bands (PHQ-9: 0, 5,
    10, 15, 20, 27), so 5 and 7 do not look like a dramatic change on a 0-27 scale."""
    questionnaire = next((r.questionnaire for r in reversed(responses) if r.questionnaire.url == url), None)
    scales = ((questionnaire.scoring or {}).get("scales") or []) if questionnaire else []
    bands = scales[0].get("bands") if scales else None
    if not bands:
        return {}
    low, high = float(bands[0]["min"]), float(bands[-1]["max"])
    return {"y_range": (low, high), "y_labels": sorted({float(b["min"]) for b in bands} | {high})}


@role_required(Role.PATIENT)
def my_answers(request: HttpRequest) -> HttpResponse:
    patient = own_patient_or_404(request, resource="QuestionnaireResponse (my answers)")
    responses = list(
        QuestionnaireResponse.objects.filter(patient=patient, status=ResponseStatus.COMPLETED)
        .select_related("questionnaire", "author").order_by("authored_at")
    )
    # One chart per questionnaire, one line per score scale.
    by_questionnaire: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    titles: dict[str, str] = {}
    for r in responses:
        titles[r.questionnaire.url] = r.questionnaire.title
        for score in r.scores or []:
            if score.get("value") is not None:
                by_questionnaire[r.questionnaire.url][_score_label(score)].append((r.authored_at, score["value"]))
    charts = [
        {"title": titles[url],
         "svg": time_series_svg(label=titles[url], series=sorted(scales.items()),
                                **_score_axis(responses, url))}
        for url, scales in by_questionnaire.items()
    ]
    seen = responses_seen_at(patient.pk, [r.pk for r in responses])
    rows = [
        {"response": r,
         "by_relative": r.author_id is not None and r.author_id != request.user.pk,
         "seen_at": seen.get(r.pk),
         # The scale's name only where a response has several (subscales); one total needs none.
         "scores": [(_score_label(s) if len(r.scores) > 1 else "", s.get("value"), _band_label(s.get("band")))
                    for s in r.scores or []]}
        for r in reversed(responses)
    ]
    return render(request, "questionnaires/history.html", {"charts": charts, "rows": rows})
