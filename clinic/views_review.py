"""The clinicians' review pages (issue 19): the list "Svar til gennemsyn" with the bulk review of
green responses, and "Markér som gennemset" beside one response on the patient page. Parse,
authorise (patients.access through questionnaires.review), call one service, answer."""

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from audit.models import Action
from audit.services import audit_record, audit_record_many, client_ip
from clinic.views import patient_page
from patients.access import clinician_patient_or_404
from proplatform.forms import form_errors_from
from questionnaires.forms import ReviewForm
from questionnaires.models import QuestionnaireResponse, ReviewColour
from questionnaires.review import AlreadyReviewed, response_review, responses_review_bulk, review_queue

PAGE_SIZE = 100  # rows a page; every response is reachable by paging


def _queue_page(request: AuthenticatedHttpRequest, *, errors: list[str] | None = None,
                status: int = 200) -> HttpResponse:
    now = timezone.now()
    queue = review_queue(request.user)
    # "new": the latest answers first, so a fresh "contact me" is not buried under a backlog of
    # old red and yellow ones (which are reviewed one at a time); by default the most urgent first.
    newest = request.GET.get("order") == "new"
    if newest:
        queue = queue.order_by("-received_at", "-pk")
    page = Paginator(queue, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    # A list view reads several patients' data: one audit row per response shown, naming its
    # patient (and one for the search itself, so an empty list is on record too).
    audit_record(user=request.user, action=Action.SEARCH, resource="QuestionnaireResponse?review-queue (page)",
                 request=request)
    audit_record_many(user=request.user, action=Action.READ, ip=client_ip(request),
                      reads=[(f"QuestionnaireResponse/{r.pk} (review list)", r.patient_id) for r in rows])

    def overdue(r: QuestionnaireResponse) -> bool:
        return r.review_due_at is None or r.review_due_at < now

    return render(request, "questionnaires/review_queue.html", {
        "rows": [{"response": r, "overdue": overdue(r), "green": r.review_colour == ReviewColour.GREEN}
                 for r in rows],
        "total": page.paginator.count, "page": page, "newest": newest,
        "overdue": sum(1 for r in rows if overdue(r)),
        "any_green": any(r.review_colour == ReviewColour.GREEN for r in rows),
        "errors": errors or [],
    }, status=status)


@role_required(Role.CLINICIAN)
def review_queue_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _queue_page(request)


@role_required(Role.CLINICIAN)
@require_POST
def review_bulk_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Mark the ticked green responses as reviewed. All or nothing: any red, yellow, foreign or
    already reviewed id refuses the lot, each named next to the checkboxes."""
    ids: list[int] = []
    bad: list[str] = []
    for raw in request.POST.getlist("ids"):
        # ASCII digits of an id the database can hold (a 30-digit number overflowed the query).
        if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
            ids.append(int(raw))
        else:
            bad.append(raw)
    if bad:
        return _queue_page(request, errors=[_("Choose responses from the list.")], status=400)
    try:
        done = responses_review_bulk(response_ids=ids, user=request.user, request=request)
    except ValidationError as exc:
        return _queue_page(request, errors=exc.messages, status=400)
    messages.success(request, _("%(n)s responses marked as reviewed.") % {"n": len(done)})
    return redirect("review-queue")


@role_required(Role.CLINICIAN)
@require_POST
def response_review_page(request: AuthenticatedHttpRequest, patient_id: uuid.UUID, response_id: int) -> HttpResponse:
    patient = clinician_patient_or_404(request, patient_id, action=Action.UPDATE,
                                       resource=f"QuestionnaireResponse/{response_id} review (page)")
    response = patient.responses.filter(pk=response_id).first()
    if response is None:
        raise Http404("No such response.")
    key = f"review-{response.pk}"
    form = ReviewForm(request.POST, prefix=key)
    if form.is_valid():
        try:
            response_review(response=response, user=request.user, note=form.cleaned_data["note"], request=request)
        except ValidationError as exc:
            form_errors_from(form, exc)
        except AlreadyReviewed as exc:
            # Nothing stored; the page shows who was first beside the response.
            messages.error(request, exc.message)
            return patient_page(request, patient, status=409)
        else:
            messages.success(request, _("Marked as reviewed."))
            return redirect(reverse("patient-detail", args=[patient.pk]) + f"#response-{response.pk}")
    messages.error(request, _("Please correct the errors below."))
    return patient_page(request, patient, bound={key: form}, status=400)
