"""'My answers': the patient's responses over time, scores as a chart and a table."""

from collections import defaultdict
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation

from accounts.decorators import role_required
from accounts.models import Role
from audit.models import Action
from patients.access import patient_or_404
from questionnaires.charts import time_series_svg
from questionnaires.models import QuestionnaireResponse, ResponseStatus


def _score_label(score: dict[str, Any]) -> str:
    return score.get("code", {}).get("display") or score.get("code", {}).get("code", "?")


def _band_label(band: dict[str, Any] | None) -> str:
    if not band:
        return ""
    language = (translation.get_language() or "da")[:2]
    return band.get(f"display_{language}") or band.get("display_da") or ""


@role_required(Role.PATIENT)
def my_answers(request: HttpRequest) -> HttpResponse:
    patient = getattr(request.user, "patient", None)
    if patient is None:
        raise Http404("No patient record for this login.")
    patient = patient_or_404(request, patient.pk, action=Action.READ, resource="QuestionnaireResponse (my answers)")
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
         "svg": time_series_svg(label=titles[url], series=sorted(scales.items()))}
        for url, scales in by_questionnaire.items()
    ]
    rows = [
        {"response": r,
         "by_relative": r.author_id is not None and r.author_id != request.user.pk,
         "scores": [(_score_label(s), s.get("value"), _band_label(s.get("band"))) for s in r.scores or []]}
        for r in reversed(responses)
    ]
    return render(request, "questionnaires/history.html", {"charts": charts, "rows": rows})
