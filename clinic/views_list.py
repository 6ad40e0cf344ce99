"""The clinician's patient list with search (/patients/): find the patient who phones.

The search text is sent by POST and never put in a URL: a CPR number in a URL ends up in the
browser's history, in proxy and server logs and in the Referer of the next page. The view keeps
the text in the session under a random key and redirects to ``/patients/?s=<key>`` (POST,
redirect, GET: reload and back work, and only the key is in the history). Filters and the page
number are plain GET parameters: none of them can hold a CPR number.

Audit: each search is one SEARCH row with its hit count (never the text: it may be a CPR
number); each page shown is one READ row per patient on it.
"""

import secrets
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role, User
from audit.models import Action
from audit.services import audit_record, audit_record_many, client_ip
from clinic.patient_list import ListFilter, patient_list, patient_list_page, programs_for
from patients.forms import PatientFilterForm, PatientSearchForm
from patients.selectors import looks_like_cpr

SESSION_KEY = "patient_searches"
# Searches kept per session: enough for back and forth between a few tabs, bounded so the
# session does not grow with every call of the day.
SEARCHES_KEPT = 10


def _filter_from(params: QueryDict, user: User) -> tuple[PatientFilterForm, ListFilter]:
    programs = list(programs_for(user))
    form = PatientFilterForm(params, programs=programs)
    if not form.is_valid():
        # A program id the user cannot choose (another team's, a stale bookmark): dropped, the
        # rest still applies.
        data = {k: v for k, v in params.items() if k != "program"}
        form = PatientFilterForm(data, programs=programs)
        form.is_valid()
    d = form.cleaned_data
    return form, ListFilter(program_id=d.get("program"), open_alerts=bool(d.get("open_alerts")),
                            missed=bool(d.get("missed")), paused=bool(d.get("paused")),
                            overdue_reviews=bool(d.get("overdue_reviews")))


def _filter_query(f: ListFilter) -> dict[str, Any]:
    q: dict[str, Any] = {}
    if f.program_id is not None:
        q["program"] = f.program_id
    for name in ("open_alerts", "missed", "paused", "overdue_reviews"):
        if getattr(f, name):
            q[name] = "on"
    return q


def _search_text(request: AuthenticatedHttpRequest, key: str) -> str | None:
    return (request.session.get(SESSION_KEY) or {}).get(key)


def _remember(request: AuthenticatedHttpRequest, text: str) -> str:
    key = secrets.token_urlsafe(12)
    kept = dict(request.session.get(SESSION_KEY) or {})
    kept[key] = text
    request.session[SESSION_KEY] = dict(list(kept.items())[-SEARCHES_KEPT:])
    return key


@role_required(Role.CLINICIAN, Role.ADMIN)
def patient_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _search(request)
    filter_form, f = _filter_from(request.GET, request.user)
    key = request.GET.get("s") or ""
    search = _search_text(request, key) if key else None
    if key and search is None:
        messages.info(request, _("That search has expired; search again."))
        key = ""
    return _render(request, filter_form, f, PatientSearchForm(initial={"q": search or ""}), key=key,
                   search=search)


def _search(request: AuthenticatedHttpRequest) -> HttpResponse:
    filter_form, f = _filter_from(request.POST, request.user)
    form = PatientSearchForm(request.POST)
    if not form.is_valid():
        return _render(request, filter_form, f, form, key="", search=None, status=400)
    text = form.cleaned_data["q"]
    hits = patient_list(request.user, f, search=text).count()
    kind = "CPR number" if looks_like_cpr(text) else "name"
    audit_record(user=request.user, action=Action.SEARCH, request=request,
                 resource=f"Patient?search by {kind} (page): {hits} hits")
    query = {"s": _remember(request, text), **_filter_query(f)}
    return redirect(reverse("patient-list") + "?" + urlencode(query))


def _render(request: AuthenticatedHttpRequest, filter_form: PatientFilterForm, f: ListFilter,
            form: PatientSearchForm, *,
            key: str, search: str | None, status: int = 200) -> HttpResponse:
    rows: list[Any] = []
    page = None
    if not form.errors:
        page, rows = patient_list_page(request.user, f, search=search, number=request.GET.get("page"))
        audit_record_many(user=request.user, action=Action.READ, ip=client_ip(request), reads=[
            ("Patient list (search results)" if search else "Patient list (page)", row.patient.pk)
            for row in rows])
    keep = {**({"s": key} if key else {}), **_filter_query(f)}
    return render(request, "patients/list.html", {
        "form": form, "filter_form": filter_form, "filter": f, "rows": rows, "page": page,
        "search_key": key, "searched": search is not None, "keep_query": urlencode(keep),
    }, status=status)
