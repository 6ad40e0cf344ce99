from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.decorators import role_required
from accounts.models import Role
from audit.models import Action
from monitoring.measures import MEASURES
from patients.access import patient_or_404
from patients.models import Patient
from questionnaires.forms import ResponseForm
from questionnaires.models import Questionnaire, QuestionnaireResponse
from questionnaires.services import response_submit


def _me(request: HttpRequest, resource: str, action: Action = Action.READ) -> Patient:
    patient = getattr(request.user, "patient", None)
    if patient is None:
        raise Http404("No patient record for this login.")
    return patient_or_404(request, patient.pk, action=action, resource=resource)


def _my_questionnaires(patient: Patient) -> list[Questionnaire]:
    """The newest version of each questionnaire of the patient's programmes."""
    candidates = Questionnaire.objects.filter(programs__episodes__patient=patient).distinct()
    newest = {}
    for q in candidates.order_by("url", "-created_at"):
        newest.setdefault(q.url, q)
    return list(newest.values())


@role_required(Role.PATIENT)
def my_home(request: HttpRequest) -> HttpResponse:
    patient = _me(request, "my-home")
    questionnaires = _my_questionnaires(patient)
    last_answered = dict(
        QuestionnaireResponse.objects.filter(patient=patient)
        .values_list("questionnaire__url").annotate(last=Max("authored_at"))
    )
    readings = patient.readings.order_by("-effective_at")[:10]
    return render(request, "questionnaires/my_home.html", {
        "patient": patient,
        "questionnaires": [(q, last_answered.get(q.url)) for q in questionnaires],
        "readings": [(r, MEASURES[r.measure]) for r in readings],
    })


@role_required(Role.PATIENT)
def answer(request: HttpRequest, questionnaire_id: int) -> HttpResponse:
    patient = _me(request, f"Questionnaire/{questionnaire_id} answer",
                  action=Action.CREATE if request.method == "POST" else Action.READ)
    questionnaire = next((q for q in _my_questionnaires(patient) if q.pk == questionnaire_id), None)
    if questionnaire is None:
        raise Http404("No such questionnaire for you.")
    form = ResponseForm(request.POST or None, definition=questionnaire.definition)
    if request.method == "POST" and form.is_valid():
        response_submit(patient=patient, questionnaire=questionnaire, items=form.fhir_items(),
                        author=request.user)
        return redirect("questionnaire-receipt", questionnaire_id=questionnaire.pk)
    return render(request, "questionnaires/answer.html", {"questionnaire": questionnaire, "form": form})


@role_required(Role.PATIENT)
def receipt(request: HttpRequest, questionnaire_id: int) -> HttpResponse:
    _me(request, f"Questionnaire/{questionnaire_id} receipt")
    return render(request, "questionnaires/receipt.html")
