"""'My answers': the patient's responses over time, scores as a chart and a table, and for each
response whether the care team has seen it — a nurse marked it as reviewed (a ResponseReview row,
questionnaires.review), never inferred from someone opening the patient's page."""

from collections import defaultdict
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from outcomes.peers import patient_peer_comparisons
from patients.access import own_patient_or_404
from questionnaires.charts import time_series_svg
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from questionnaires.review import responses_reviewed_at


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
def my_answers(request: AuthenticatedHttpRequest) -> HttpResponse:
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
    seen = responses_reviewed_at(patient.pk, [r.pk for r in responses])
    rows = [
        {"response": r,
         "by_relative": r.author_id is not None and r.author_id != request.user.pk,
         "seen_at": seen.get(r.pk),
         # The scale's name only where a response has several (subscales); one total needs none.
         "scores": [(_score_label(s) if len(r.scores) > 1 else "", s.get("value"), _band_label(s.get("band")))
                    for s in r.scores or []]}
        for r in reversed(responses)
    ]
    # "Patients like me" (outcomes.peers), the same on the patient's and the clinician's page.
    peers = patient_peer_comparisons(patient_id=patient.pk)
    return render(request, "questionnaires/history.html", {"charts": charts, "rows": rows, "peers": peers})
