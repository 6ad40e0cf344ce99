"""The patient's home page (also a relative's, answering for them): the questionnaires asked for now
and those to answer when they like (questionnaires), when the next ones are due (schedules) and the
latest measurements (monitoring). In clinic because it composes those apps."""

from typing import Any

from django.db.models import Max
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from monitoring.measures import MEASURES
from questionnaires.access import answering_for
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from questionnaires.selectors import questionnaires_offered
from schedules.selectors import next_occurrences_for, open_occurrences_for


@role_required(Role.PATIENT, Role.RELATIVE)
def my_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    patient = answering_for(request, "my-home")
    questionnaires, drafts = questionnaires_offered(patient, request.user)
    last_answered = dict(
        QuestionnaireResponse.objects.filter(patient=patient, status=ResponseStatus.COMPLETED)
        .values_list("questionnaire__url").annotate(last=Max("authored_at"))
    )
    lang = translation.get_language()
    # A relative helps with questionnaires; the patient's measurements stay the patient's.
    is_relative = request.user.role == Role.RELATIVE
    readings = [] if is_relative else patient.readings.order_by("-effective_at")[:10]
    now = timezone.now()
    due: dict[str, Any] = {}
    for occurrence in open_occurrences_for(patient, now=now):  # nearest deadline first
        due.setdefault(occurrence.questionnaire_url, occurrence)
    upcoming = next_occurrences_for(patient, now=now)
    listed = [(q, q.definition.title_for(lang) or q.title, last_answered.get(q.url), q.pk in drafts,
               due.get(q.url), upcoming.get(q.url)) for q in questionnaires]
    # What is asked for now (a scheduled time is open), nearest deadline first, apart from what the
    # patient may answer when they like: an elderly patient should not have to tell them apart.
    asked = sorted((row for row in listed if row[4] is not None), key=lambda row: due[row[0].url].closes_at)
    return render(request, "questionnaires/my_home.html", {
        "patient": patient,
        "due_questionnaires": asked,
        "optional_questionnaires": [row for row in listed if row[4] is None],
        "next_due": min((o for o in upcoming.values()), key=lambda o: o.due_at, default=None),
        "is_relative": is_relative,
        "readings": [(r, MEASURES[r.measure]) for r in readings],
    })
