import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role, User
from audit.models import Action
from patients.models import Patient, Program
from patients.selectors import program_for_receipt, when_to_call
from questionnaires.access import answering_for
from questionnaires.definition import Definition
from questionnaires.enablewhen import enabled_items
from questionnaires.forms import Page, PageForm, field_name, pages
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseStatus
from questionnaires.review import responses_reviewed_at, review_workdays_for
from questionnaires.safety import Signals, safety_signals
from questionnaires.selectors import questionnaires_offered
from questionnaires.services import (
    ResponseConflict,
    ResponseInvalid,
    response_draft_for,
    response_draft_save,
    response_submit,
)
from questionnaires.validation import MissingAnswer, ResponseError, build_items, flat_answers, response_validate


def _mine_or_404(patient: Patient, user: User, questionnaire_id: int) -> Questionnaire:
    questionnaires, _drafted = questionnaires_offered(patient, user)
    questionnaire = next((q for q in questionnaires if q.pk == questionnaire_id), None)
    if questionnaire is None:
        raise Http404("No such questionnaire for you.")
    return questionnaire


# --- answering, one page at a time --------------------------------------------------------------

class _Flow:
    """The questionnaire, its pages and the patient's draft answers, for one request."""

    def __init__(self, patient: Patient, questionnaire: Questionnaire, user: User) -> None:
        self.patient, self.questionnaire = patient, questionnaire
        self.lang = translation.get_language()
        self.definition: Definition = questionnaire.definition
        self.pages: list[Page] = pages(self.definition, self.lang)
        self.draft = response_draft_for(patient=patient, questionnaire=questionnaire, author=user)
        self.answers: dict[str, list[dict[str, Any]]] = flat_answers(self.draft.items) if self.draft else {}

    @property
    def title(self) -> str:
        return self.definition.title_for(self.lang) or self.questionnaire.title

    def enabled_pages(self, answers: dict[str, list[dict[str, Any]]]) -> list[int]:
        enabled = enabled_items(self.definition, answers)
        return [p.index for p in self.pages if any(i.linkId in enabled for i in p.items)]

    def step(self, index: int, direction: int, answers: dict[str, list[dict[str, Any]]]) -> int:
        """The next (or previous) page that is enabled; len(pages) is the review page."""
        enabled = self.enabled_pages(answers)
        if direction > 0:
            return next((i for i in enabled if i > index), len(self.pages))
        return next((i for i in reversed(enabled) if i < index), index)

    def shown(self, page: Page, answers: dict[str, list[dict[str, Any]]]) -> set[str]:
        """Items to render: the enabled ones, and those whose condition an answer on this very
        page can change (questionnaire.js shows and hides those as the patient answers)."""
        enabled = enabled_items(self.definition, answers)
        here = page.link_ids()
        shown: set[str] = set()

        def visit(items: list[Any], live: bool) -> None:
            for item in items:
                depends_here = any(c.question in here for c in item.enableWhen)
                if item.linkId in enabled or depends_here or (live and item.enableWhen == []):
                    shown.add(item.linkId)
                    visit(item.item, live or depends_here)

        visit(page.items, False)
        return shown

    def page_url(self, index: int) -> str:
        if index >= len(self.pages):
            return reverse("questionnaire-review", args=[self.questionnaire.pk])
        return reverse("questionnaire-page", args=[self.questionnaire.pk, index + 1])

    def context_answers(self, page: Page) -> dict[str, list[dict[str, Any]]]:
        return {k: v for k, v in self.answers.items() if k not in page.link_ids()}


def _flow(request: AuthenticatedHttpRequest, questionnaire_id: int, action: Action) -> _Flow:
    patient = answering_for(request, f"Questionnaire/{questionnaire_id} answer", action=action)
    return _Flow(patient, _mine_or_404(patient, request.user, questionnaire_id), request.user)


@role_required(Role.PATIENT, Role.RELATIVE)
@require_http_methods(["GET"])
def answer(request: AuthenticatedHttpRequest, questionnaire_id: int) -> HttpResponse:
    """Start, or resume where the patient left off."""
    flow = _flow(request, questionnaire_id, Action.READ)
    index = min(flow.draft.current_page, len(flow.pages)) if flow.draft else 0
    return redirect(flow.page_url(index))


def _render_page(request: AuthenticatedHttpRequest, flow: _Flow, page: Page, form: PageForm,
                 status: int = 200) -> HttpResponse:
    enabled = flow.enabled_pages(flow.answers)
    position = enabled.index(page.index) + 1 if page.index in enabled else page.index + 1
    return render(request, "questionnaires/page.html", {
        "flow": flow, "questionnaire": flow.questionnaire, "title": flow.title, "page": page, "form": form,
        "position": position, "page_count": max(len(enabled), position),
        "first": page.index == (enabled[0] if enabled else 0),
        "script_data": {"answers": flow.context_answers(page), "items": form.option_map()},
    }, status=status)


@role_required(Role.PATIENT, Role.RELATIVE)
@require_http_methods(["GET", "POST"])
def answer_page(request: AuthenticatedHttpRequest, questionnaire_id: int, number: int) -> HttpResponse:
    flow = _flow(request, questionnaire_id, Action.CREATE if request.method == "POST" else Action.READ)
    if not 1 <= number <= len(flow.pages):
        raise Http404("No such page.")
    page = flow.pages[number - 1]
    if request.method == "GET":
        form = PageForm(definition=flow.definition, page=page, lang=flow.lang, answers=flow.answers,
                        shown=flow.shown(page, flow.answers))
        return _render_page(request, flow, page, form)

    action = request.POST.get("action", "next")
    if action == "autosave" and flow.draft is None:
        # Leaving a page only updates a draft the patient started; a tab left open after the
        # questionnaire was sent must not start a new draft full of last week's answers.
        return HttpResponse(status=204)
    form = PageForm(request.POST, definition=flow.definition, page=page, lang=flow.lang, answers=flow.answers,
                    shown=flow.shown(page, flow.answers))
    form.is_valid()  # parses each field; errors stay on the form
    here = page.link_ids()
    merged = {k: v for k, v in flow.answers.items() if k not in here} | form.answers()
    checked = response_validate(flow.definition, build_items(flow.definition, merged),
                                check_required=here if action == "next" else False)
    bad = set()
    for error in checked.errors:
        bad.add(error.link_id)
        item = flow.definition.by_link_id().get(error.link_id or "")
        if item is not None and field_name(item) in form.fields and action == "next":
            code = "required" if isinstance(error, MissingAnswer) else None
            form.add_error(field_name(item), ValidationError(error.message, code=code))
    keep = {k: v for k, v in checked.answers.items() if k not in bad}
    failed = action == "next" and not form.is_valid()
    if action == "next" and not failed and request.GET.get("return") == "review":
        target = len(flow.pages)  # changing one answer from the review page goes back to it
    elif action == "next" and not failed:
        target = flow.step(page.index, +1, keep)
    elif action == "back":
        target = flow.step(page.index, -1, keep)
    else:
        target = page.index
    response_draft_save(patient=flow.patient, questionnaire=flow.questionnaire,
                        items=build_items(flow.definition, keep), current_page=target, author=request.user)
    if action == "autosave":  # navigator.sendBeacon as the page is left (questionnaire.js)
        return HttpResponse(status=204)
    if action == "save":
        messages.success(request, _("Your answers are saved. You can continue later from this page."))
        return redirect("my-home")
    if failed:
        flow.answers = keep
        return _render_page(request, flow, page, form)
    return redirect(flow.page_url(target))


def _review_rows(flow: _Flow, answers: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    enabled = enabled_items(flow.definition, answers)
    rows: list[dict[str, Any]] = []
    for page in flow.pages:
        if not any(i.linkId in enabled for i in page.items):
            continue
        questions = []
        for item in page.walk():
            if item.linkId not in enabled or not item.answerable:
                continue
            shown = []
            for answer in answers.get(item.linkId, []):
                option = item.option_for(answer)
                value = next((v for k, v in answer.items() if k.startswith("value")), "")
                if option is not None:
                    shown.append(option.display_for(flow.lang))
                elif isinstance(value, bool):
                    shown.append(_("Yes") if value else _("No"))
                else:
                    shown.append(str(value))
            questions.append({"item": item, "text": item.text_for(flow.lang), "answers": shown,
                              "field_id": f"id_{field_name(item)}",
                              "url": flow.page_url(page.index) + f"?return=review#id_{field_name(item)}"})
        rows.append({"page": page, "title": page.title, "questions": questions,
                     "url": flow.page_url(page.index)})
    return rows


@role_required(Role.PATIENT, Role.RELATIVE)
@require_http_methods(["GET", "POST"])
def review(request: AuthenticatedHttpRequest, questionnaire_id: int) -> HttpResponse:
    flow = _flow(request, questionnaire_id, Action.CREATE if request.method == "POST" else Action.READ)
    identifier = request.POST.get("identifier", "")
    try:
        uuid.UUID(identifier)
    except ValueError:
        # The page writes a UUID; anything else (a NUL byte, which PostgreSQL refuses in the
        # look-up below) is no earlier submission: a new identifier is made below.
        identifier = ""
    if request.method == "POST" and identifier:
        # A second click on "Send" (or the browser resending) finds the first response.
        if QuestionnaireResponse.objects.filter(patient=flow.patient, identifier=identifier).exists():
            return redirect("questionnaire-receipt", questionnaire_id=flow.questionnaire.pk)
    if flow.draft is None:
        return redirect(flow.page_url(0))
    errors = []
    if request.method == "POST":
        try:
            uuid.UUID(identifier)
        except ValueError:
            identifier = str(uuid.uuid4())
        try:
            response_submit(patient=flow.patient, questionnaire=flow.questionnaire, items=flow.draft.items,
                            author=request.user, identifier=identifier, draft=flow.draft)
        except ResponseInvalid as exc:
            errors = exc.errors
        except ResponseConflict as exc:
            errors = [ResponseError(None, message) for message in exc.messages]
        else:
            return redirect("questionnaire-receipt", questionnaire_id=flow.questionnaire.pk)
    else:
        # Showing the review writes nothing: every way the pages lead here (next on the last page,
        # next after changing an answer from the review, resuming) is a POST that already saved
        # the draft with the review as its page, or a resume that read it from there.
        errors = response_validate(flow.definition, flow.draft.items).errors
    by_id = flow.definition.by_link_id()
    page_of = {link_id: p for p in flow.pages for link_id in p.link_ids()}
    summary = []
    for error in errors:
        item = by_id.get(error.link_id or "")
        page = page_of.get(error.link_id or "")
        url = flow.page_url(page.index) + f"#id_{field_name(item)}" if item and page else ""
        summary.append({"text": item.text_for(flow.lang) if item else "", "message": error.message, "url": url})
    return render(request, "questionnaires/review.html", {
        "flow": flow, "questionnaire": flow.questionnaire, "title": flow.title,
        "rows": _review_rows(flow, flow.answers), "errors": summary,
        "identifier": str(uuid.uuid4()), "back_url": flow.page_url(flow.step(len(flow.pages), -1, flow.answers)),
    }, status=200)


def _tel(phone: str) -> str:
    """A phone number as a tel: link wants it: digits and a leading +."""
    return "".join(c for c in phone if c.isdigit() or c == "+")


@role_required(Role.PATIENT, Role.RELATIVE)
def receipt(request: AuthenticatedHttpRequest, questionnaire_id: int) -> HttpResponse:
    """What the patient is told after sending. Decided here from the answers themselves (the
    definition's red answers, the contact question: questionnaires.safety), not from whether the
    asynchronous rule evaluation has run: a red answer gets the urgent advice with 112 at once."""
    patient = answering_for(request, f"Questionnaire/{questionnaire_id} receipt")
    # The sender's own latest response (a relative's, or the patient's).
    latest = (QuestionnaireResponse.objects.filter(patient=patient, questionnaire_id=questionnaire_id,
                                                   author=request.user, status=ResponseStatus.COMPLETED)
              .select_related("questionnaire").order_by("-authored_at", "-pk").first())
    seen_at = None
    if latest is not None and request.user.role == Role.PATIENT:
        # Only a nurse's "Markér som gennemset" counts (questionnaires.review); a relative
        # answers for the patient, and sees nothing more.
        seen_at = responses_reviewed_at(patient.pk, [latest.pk]).get(latest.pk)
    # The promise the due time was set from: the programme's working days.
    workdays = (review_workdays_for(patient_id=patient.pk, questionnaire_url=latest.questionnaire.url,
                                    on=timezone.localdate()) if latest is not None
                else getattr(settings, "PRO_REVIEW_WORKDAYS", 2))
    lang = translation.get_language()
    signals = (safety_signals(latest.questionnaire.definition, latest.items, lang) if latest is not None
               else Signals())
    # Without a current programme (an episode ended meanwhile) the default texts, no phone number.
    program = (program_for_receipt(patient, latest.questionnaire.url) if latest is not None else None) or Program()
    # The out-of-hours number differs by region (patients.selectors.when_to_call).
    return render(request, "questionnaires/receipt.html", {
        "workdays": workdays, "seen_at": seen_at,
        "when_to_call": when_to_call(patient),
        # Red by the answers' own colours, decided now; or red by the rules once they have run (a
        # PHQ-9 total of 24 with item 9 "Slet ikke": the review colour is lifted to the alert's).
        "urgent": bool(signals.red) or (signals.contact is not None and signals.contact.severity == "red")
        or (latest is not None and latest.review_colour == "red"),
        "contact": signals.contact is not None,
        "urgent_text": program.urgent_text(lang), "contact_text": program.contact_text(lang),
        "phone": program.department_phone, "phone_tel": _tel(program.department_phone),
    })
