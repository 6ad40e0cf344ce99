"""The programme editor's pages (issue 24): for administrators, and for team leads on the
programmes their teams follow patients in. Server-rendered, no JavaScript needed, no JSON."""

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role, User
from alerts.backtest import MAX_DAYS, backtest_run
from alerts.models import Rule, RuleKind, RuleRevision
from alerts.params_words import params_in_words, questionnaire_titles
from alerts.rule_forms import KIND_LABELS, SEP, ProgrammeVocabulary, RuleForm
from audit.models import Action, Outcome
from audit.services import audit_record, audit_record_many, client_ip
from editor.forms import EnrolForm, ProgramForm, QuestionnaireUploadForm, ReasonForm, ScheduleForm
from editor.import_report import report_lines
from editor.selectors import editable_programs, led_teams, may_edit_program
from editor.services import episode_enrol, program_publish, program_rule_save, program_save, rule_rollback
from patients.access import patients_for
from patients.models import Patient, Program
from proplatform.forms import form_errors_from
from schedules.models import Schedule
from schedules.services import schedule_create, schedule_preview

if TYPE_CHECKING:
    from patients.forms import PatientSearchForm


def _program_for(request: AuthenticatedHttpRequest, program_id: int) -> Program:
    program = get_object_or_404(Program, pk=program_id)
    if not may_edit_program(request.user, program):
        audit_record(user=request.user, action=Action.READ, resource=f"Program/{program_id} editor",
                     outcome=Outcome.DENIED, request=request)
        raise Http404
    return program


def _may_create(user: User) -> bool:
    return user.role == Role.ADMIN or led_teams(user).exists()


@login_required
def program_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    programs = list(editable_programs(request.user).order_by("name"))
    if not programs and not _may_create(request.user):
        raise PermissionDenied
    return render(request, "editor/program_list.html", {"programs": programs,
                                                         "may_create": _may_create(request.user)})


@login_required
def program_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not _may_create(request.user):
        raise PermissionDenied
    form = ProgramForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        program = program_save(program=form.save(commit=False), by=request.user, request=request)
        form.save_m2m()
        return redirect("editor-program", program_id=program.pk)
    return render(request, "editor/program_new.html", {"form": form})


@login_required
def program_edit(request: AuthenticatedHttpRequest, program_id: int) -> HttpResponse:
    program = _program_for(request, program_id)
    form = ProgramForm(request.POST or None, instance=program, user=request.user)
    saved = False
    if request.method == "POST" and form.is_valid():
        program = program_save(program=form.save(commit=False), by=request.user, request=request)
        form.save_m2m()
        saved = True
        form = ProgramForm(instance=program, user=request.user)
    return render(request, "editor/program.html", {
        "program": program, "form": form, "saved": saved, **_program_parts(program),
    })


def _program_parts(program: Program) -> dict[str, Any]:
    rules = list(Rule.objects.filter(program=program).exclude(safety_net_for="").order_by("id")) + list(
        Rule.objects.filter(program=program, safety_net_for="").prefetch_related(
            Prefetch("revisions", queryset=RuleRevision.objects.select_related("changed_by").order_by("-version"))
        ).order_by("id"))
    rows = []
    titles = questionnaire_titles(list(program.questionnaires.values_list("url", flat=True)))
    vocabulary = ProgrammeVocabulary(program)
    for rule in rules:
        try:
            words = _with_question_texts(rule.params, params_in_words(rule.params, titles), vocabulary)
        except Exception:  # noqa: BLE001 - an old rule the words cannot describe is still listed
            words = []
        revisions = []
        for revision in (rule.revisions.all() if not rule.safety_net_for else []):
            try:
                said = _with_question_texts(revision.params, params_in_words(revision.params, titles), vocabulary)
            except Exception:  # noqa: BLE001 - an old definition the words cannot describe is still listed
                said = []
            revisions.append({"revision": revision, "words": said})
        rows.append({"rule": rule, "words": words, "kind_label": RuleKind(rule.kind).label
                     if rule.kind in RuleKind.values else rule.kind, "revisions": revisions})
    return {
        "rule_rows": rows,
        "kinds": list(KIND_LABELS.items()),
        "schedules": Schedule.objects.filter(program=program).order_by("id"),
        "enrolled": program.episodes.filter(end=None).count(),
        "program_questionnaires": program.questionnaires.order_by("title", "-created_at"),
    }


def _with_question_texts(params: dict[str, Any], words: list[tuple[str, str]],
                         vocabulary: ProgrammeVocabulary) -> list[tuple[str, str]]:
    """The question's text and the answers' words instead of their linkId and codes ("contact",
    "true"), which mean nothing to the secretariat reading the programme page."""
    link = params.get("link_id")
    if not link or [k for k in params if k != "component"] != list(params)[:len(words)]:
        return words
    items = {value.split(SEP, 1)[1]: text.split(": ", 1)[-1] for value, text in vocabulary.items}
    answers = dict(vocabulary.answers)
    out = []
    for key, (label, value) in zip(params, words, strict=False):
        if key == "link_id":
            value = items.get(link, value)
        elif key == "codes":
            value = ", ".join(answers.get(f"{link}{SEP}{c}", c).split(": ", 1)[-1] for c in params["codes"])
        out.append((label, value))
    return out


def _backtest(request: AuthenticatedHttpRequest, *, program: Program, form: RuleForm) -> dict[str, Any]:
    """The rule as filled in, replayed over the programme's last 90 days beside the rule as it is."""
    data = form.cleaned_data
    hours = float(data.get("cooldown_hours") or Decimal(0))
    entry = {"program": program.slug, "kind": form.kind, "name": data["name"], "severity": data["severity"],
             "params": data["params"], "cooldown_hours": hours}
    candidate = [entry] if form.rule is None else [{"rule": form.rule.pk, "active": False}, entry]
    key = f"new:{len(candidate)}"
    result = backtest_run(candidate=candidate, days=MAX_DAYS, resolve_after=None)
    counts = result.by_spec[key]
    per_patient = result.by_spec_patient.get(key, {})
    visible = {p.pk: p for p in patients_for(request.user).filter(pk__in=list(per_patient))}
    audit_record(user=request.user, action=Action.SEARCH, resource="Alert?backtest (editor)", request=request)
    patients = []
    for patient_id, alerts in sorted(per_patient.items(), key=lambda item: -item[1]):
        patient = visible.get(patient_id)
        if patient is not None:
            audit_record(user=request.user, action=Action.READ, resource="Alert?backtest (alert counts)",
                         patient_id=patient.pk, request=request)
        patients.append({"name": patient.name if patient else _("A patient outside your teams"), "alerts": alerts})
    current = result.by_spec.get(f"rule:{form.rule.pk}") if form.rule is not None else None
    return {"counts": counts, "patients": patients, "current": current, "days": MAX_DAYS}


@login_required
def rule_edit(request: AuthenticatedHttpRequest, program_id: int, kind: str | None = None, rule_id: int | None = None
              ) -> HttpResponse:
    program = _program_for(request, program_id)
    rule = None
    if rule_id is not None:
        rule = get_object_or_404(Rule, pk=rule_id, program=program, safety_net_for="")
        kind = rule.kind
    if kind not in KIND_LABELS:
        raise Http404
    form = RuleForm(request.POST or None, kind=kind, program=program, rule=rule)
    if request.POST.get("action") == "backtest":
        # A trial comes before the decision: the reason is asked when the change is saved.
        form.fields["reason"].required = False
    trial = None
    if request.method == "POST" and form.is_valid():
        if request.POST.get("action") == "backtest":
            trial = _backtest(request, program=program, form=form)
        else:
            try:
                program_rule_save(program=program, kind=kind, rule=rule, name=form.cleaned_data["name"],
                                  severity=form.cleaned_data["severity"], params=form.cleaned_data["params"],
                                  cooldown=form.cooldown, by=request.user, reason=form.cleaned_data["reason"],
                                  request=request)
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                return redirect(reverse("editor-program", args=[program.pk]) + "#rules")
    units = {name: form.unit_for(name) for name in form.param_fields}
    return render(request, "editor/rule_form.html", {
        "program": program, "form": form, "rule": rule, "kind": kind, "kind_label": KIND_LABELS[kind],
        "param_fields": [(form[name], units[name]) for name in form.param_fields], "trial": trial,
    })


@login_required
def rule_rollback_view(request: AuthenticatedHttpRequest, program_id: int, rule_id: int, version: int) -> HttpResponse:
    program = _program_for(request, program_id)
    rule = get_object_or_404(Rule, pk=rule_id, program=program, safety_net_for="")
    revision = get_object_or_404(RuleRevision, rule=rule, version=version)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rule_rollback(rule=rule, version=version, by=request.user, reason=form.cleaned_data["reason"],
                          request=request)
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            return redirect(reverse("editor-program", args=[program.pk]) + "#rules")
    return render(request, "editor/rule_rollback.html", {
        "program": program, "rule": rule, "revision": revision, "form": form,
        "words": params_in_words(revision.params, questionnaire_titles([revision.params.get("questionnaire")])),
    })


@login_required
def schedule_new(request: AuthenticatedHttpRequest, program_id: int) -> HttpResponse:
    program = _program_for(request, program_id)
    form = ScheduleForm(request.POST or None, program=program,
                        initial={"example_start": timezone.localdate(), "window_days": 2, "kind": "every"})
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if request.POST.get("action") == "preview":
            unsaved = Schedule(program=program, name=data["name"], questionnaire_url=data["questionnaire_url"],
                               kind=data["kind"], params=data["params"], due_time=data["due_time"],
                               open_before=data["open_before"], window=data["window"])
            preview = {"start": data.get("example_start") or timezone.localdate(),
                       "rows": schedule_preview(schedule=unsaved,
                                                index_date=data.get("example_start") or timezone.localdate())}
        else:
            try:
                schedule = schedule_create(
                    program=program, name=data["name"], questionnaire_url=data["questionnaire_url"],
                    kind=data["kind"], params=data["params"], window=data["window"],
                    open_before=data["open_before"], due_time=data["due_time"], remind_before=data["remind_before"])
            except ValidationError as exc:
                form_errors_from(form, exc, rename={"window": "window_days", "open_before": "open_before_days",
                                                    "remind_before": "remind_before_hours", "name": "name"})
            else:
                audit_record(user=request.user, action=Action.CREATE, resource=f"Schedule/{schedule.pk}",
                             request=request)
                return redirect(reverse("editor-program", args=[program.pk]) + "#schedules")
    return render(request, "editor/schedule_form.html", {"program": program, "form": form, "preview": preview})


_UPLOADS = "editor-questionnaire-uploads"


def _preview_pages(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the questionnaire as the patient's form renders it, all questions shown."""
    from django.utils import translation

    from questionnaires.definition import parse
    from questionnaires.forms import PageForm, pages

    definition = parse(resource)
    lang = translation.get_language()
    out = []
    for page in pages(definition, lang):
        shown = page.link_ids()
        form = PageForm(definition=definition, page=page, lang=lang, answers={}, shown=shown,
                        prefix=f"preview{page.index}")
        out.append({"page": page, "form": form})
    return out


@login_required
def questionnaire_upload(request: AuthenticatedHttpRequest, program_id: int) -> HttpResponse:
    """Upload (or pick from the library) → the import report per question and a phone preview →
    publish into the programme. The file is kept in the session between the two steps under a
    random key, so nothing is stored in the database until it is published."""
    import uuid

    from questionnaires.services import QuestionnaireImportError, questionnaire_import, questionnaire_review

    program = _program_for(request, program_id)
    uploads = request.session.get(_UPLOADS, {})
    if request.method == "POST" and request.POST.get("action") == "publish":
        pending = uploads.get(request.POST.get("key", ""))
        if pending is None:
            return redirect("editor-questionnaire-upload", program_id=program.pk)
        try:
            if pending.get("library"):
                from django.core.management.base import CommandError

                from questionnaires.instruments import instrument_load

                try:
                    questionnaire, _changed = instrument_load(name=pending["library"])
                except CommandError as exc:
                    raise ValidationError(str(exc)) from exc
            else:
                questionnaire = questionnaire_import(resource=pending["resource"])
        except QuestionnaireImportError as exc:
            form = QuestionnaireUploadForm()
            form.add_error("file", [line.message for line in report_lines(exc.issues)])
            return render(request, "editor/questionnaire_upload.html", {"program": program, "form": form})
        except ValidationError as exc:
            form = QuestionnaireUploadForm()
            form.add_error("file", exc.messages)
            return render(request, "editor/questionnaire_upload.html", {"program": program, "form": form})
        program.questionnaires.add(questionnaire)  # its safety net follows (alerts.apps receiver)
        audit_record(user=request.user, action=Action.CREATE,
                     resource=f"Questionnaire/{questionnaire.pk} in Program/{program.pk}", request=request)
        uploads.pop(request.POST.get("key", ""), None)
        request.session[_UPLOADS] = uploads
        return redirect(reverse("editor-program", args=[program.pk]) + "#settings")
    form = QuestionnaireUploadForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"program": program, "form": form}
    if request.method == "POST" and form.is_valid():
        resource = form.cleaned_data["resource"]
        issues = questionnaire_review(resource=resource)
        context["issues"] = report_lines(issues)
        context["refused"] = any(i.severity == "error" for i in issues)
        context["title"] = resource.get("title") or resource.get("name") or resource.get("url") or ""
        if not context["refused"]:
            key = uuid.uuid4().hex
            # Only the last few uploads are kept: a session is not a store.
            uploads = dict(list(uploads.items())[-2:])
            uploads[key] = {"resource": resource, "library": form.cleaned_data.get("library") or ""}
            request.session[_UPLOADS] = uploads
            context["key"] = key
            context["pages"] = _preview_pages(resource)
    return render(request, "editor/questionnaire_upload.html", context)


def _enrol_search(request: AuthenticatedHttpRequest, search: "PatientSearchForm") -> tuple[list[Patient], bool]:
    """The patients matching the search box among those the person may see, audited as the
    patient list's search is: the search (by CPR number or name — never the text itself) and a
    read of each patient shown."""
    from editor.forms import ENROL_HITS
    from patients.selectors import looks_like_cpr, patient_search_q

    text = search.cleaned_data["q"]
    found = patients_for(request.user).filter(patient_search_q(text)).order_by("family_name", "given_name", "pk")
    hits = list(found[:ENROL_HITS + 1])
    kind = "CPR number" if looks_like_cpr(text) else "name"
    audit_record(user=request.user, action=Action.SEARCH, request=request,
                 resource=f"Patient?search by {kind} (enrolment): {len(hits)} hits")
    shown = hits[:ENROL_HITS]
    audit_record_many(user=request.user, action=Action.READ, ip=client_ip(request),
                      reads=[("Patient search results (enrolment)", p.pk) for p in shown])
    return shown, len(hits) > ENROL_HITS


@login_required
def enrol(request: AuthenticatedHttpRequest, program_id: int) -> HttpResponse:
    """Search (POST: a CPR number never goes in a URL) → choose among the hits → enrol."""
    from patients.forms import PatientSearchForm
    from patients.models import CareTeam, Patient

    program = _program_for(request, program_id)
    teams = CareTeam.objects.all() if getattr(request.user, "role", None) == Role.ADMIN else led_teams(request.user)
    visible = patients_for(request.user)
    initial = {"treatment_start": timezone.localdate()}
    search = PatientSearchForm(request.POST if request.method == "POST" else None)
    context: dict[str, Any] = {"program": program, "search": search, "searched": False, "too_many": False}
    if request.method == "POST" and request.POST.get("action") == "search":
        # Only the search is checked; what was typed below it is kept, not judged yet.
        form = EnrolForm(patients=visible, teams=teams, initial={
            **initial, **{k: request.POST[k] for k in ("care_team", "treatment_start") if request.POST.get(k)}})
        hits: list[Any] = []
        if search.is_valid():
            hits, context["too_many"] = _enrol_search(request, search)
            context["searched"] = True
        form.show_only(Patient.objects.filter(pk__in=[p.pk for p in hits]).order_by("family_name", "given_name"))
    elif request.method == "POST":
        search = PatientSearchForm(initial={"q": request.POST.get("q", "")})
        context["search"] = search
        form = EnrolForm(request.POST, patients=visible, teams=teams, initial=initial)
        if form.is_valid():
            try:
                episode_enrol(patient=form.cleaned_data["patient"], program=program,
                              care_team=form.cleaned_data["care_team"],
                              treatment_start=form.cleaned_data["treatment_start"], by=request.user, request=request)
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                return redirect(reverse("editor-program", args=[program.pk]) + "#patients")
        chosen = form.cleaned_data.get("patient") if hasattr(form, "cleaned_data") else None
        form.show_only(visible.filter(pk=chosen.pk) if chosen is not None else Patient.objects.none())
        context["searched"] = chosen is not None
    else:
        form = EnrolForm(patients=visible, teams=teams, initial=initial)
        form.show_only(Patient.objects.none())
    context["form"] = form
    return render(request, "editor/enrol.html", context)


@login_required
def questionnaire_edit(request: AuthenticatedHttpRequest, program_id: int, questionnaire_id: int) -> HttpResponse:
    from editor.questionnaire_edit import QuestionnaireEditForm
    from questionnaires.models import Questionnaire
    from questionnaires.services import QuestionnaireImportError, questionnaire_revise

    program = _program_for(request, program_id)
    questionnaire = get_object_or_404(Questionnaire, pk=questionnaire_id, programs=program)
    form = QuestionnaireEditForm(request.POST or None, questionnaire=questionnaire)
    if request.method == "POST" and form.is_valid():
        try:
            revised = questionnaire_revise(questionnaire=questionnaire, resource=form.edited_resource())
        except QuestionnaireImportError as exc:
            form.add_error(None, [line.message if line.link_id is None else f"{line.link_id}: {line.message}"
                                  for line in report_lines(exc.issues)])
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            audit_record(user=request.user, action=Action.UPDATE,
                         resource=f"Questionnaire/{revised.pk} v{revised.version}: {form.cleaned_data['reason']}"[:300],
                         request=request)
            return redirect(reverse("editor-program", args=[program.pk]) + "#settings")
    return render(request, "editor/questionnaire_edit.html", {"program": program, "questionnaire": questionnaire,
                                                               "form": form})


@login_required
def program_publish_view(request: AuthenticatedHttpRequest, program_id: int) -> HttpResponse:
    program = _program_for(request, program_id)
    if request.method != "POST":
        return redirect("editor-program", program_id=program.pk)
    try:
        program_publish(program=program, by=request.user, request=request)
    except ValidationError as exc:
        return render(request, "editor/program.html", {
            "program": program, "form": ProgramForm(instance=program, user=request.user),
            "publish_errors": exc.messages, **_program_parts(program)})
    return redirect(reverse("editor-program", args=[program.pk]) + "#patients")
