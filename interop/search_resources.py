"""FHIR searches, one function per resource type: parsed parameters (interop.search) in, a
searchset Bundle (interop.paging) out. Views call one of these and serialise the result.

Scope comes first and from one place: a patient-compartment search (Observation,
QuestionnaireResponse, Flag, DetectedIssue) names its patients, each checked and audited by
patients.access.patient_or_404; a Patient search runs inside patients_for(user), and every
patient it returns is audited by name. Cursors carry positions only, so no page can leave the
scope the first page had.
"""

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F, Func, IntegerField, Q, QuerySet, Subquery
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.request import Request

from accounts.models import Role
from alerts.models import Alert, Status
from audit.models import Action, Outcome
from audit.services import audit_record, audit_record_many
from interop.mapping import (
    CPR_SYSTEM,
    ORIGINAL_SYSTEMS,
    patient_to_fhir,
    questionnaire_to_fhir,
    reading_to_observation,
    response_to_fhir,
    score_to_observation,
)
from interop.paging import Key, Page, cursor_decode, jsonable, page_queryset, searchset_bundle
from interop.search import DateRange, Search, StringValue, Token, bad, parse_search
from interop.search_sql import Statement, rows_together
from monitoring.measures import BY_LOINC, LOINC_SYNONYMS, MEASURES, NPU_CODES
from monitoring.models import Reading
from patients.access import can_see_identifiers, patients_for
from patients.access_sql import access_check, patients_or_404_audited
from patients.models import Patient
from questionnaires.models import Questionnaire, QuestionnaireResponse

LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
_NONE = Q(pk__in=[])
# "Everything" inside an OR: Q() is the identity of | and &, so _NONE | Q() would be _NONE.
_ALL = Q(pk__isnull=False)


def parse_request(request: Request, resource_type: str, *, hidden: frozenset[str] = frozenset()) -> Search:
    """The search of a GET (query string) or a POST to _search (form body, plus any query string)."""
    params = [(n, v) for n, values in request.query_params.lists() for v in values]
    if request.method == "POST":
        data = request.data
        if not hasattr(data, "lists"):
            raise exceptions.ParseError("POST _search takes a form body (application/x-www-form-urlencoded).")
        params += [(n, v) for n, values in data.lists() for v in values]
    return parse_search(resource_type, params, prefer=request.headers.get("Prefer", ""),
                        base_url=request.build_absolute_uri("/fhir").rstrip("/"), hidden=hidden)


# --- Building blocks -------------------------------------------------------------------------

def date_q(field: str, value: DateRange) -> Q:
    lo, hi = {f"{field}__gte": value.lo}, {f"{field}__lt": value.hi}
    return {"eq": Q(**lo) & Q(**hi), "ne": Q(**{f"{field}__lt": value.lo}) | Q(**{f"{field}__gte": value.hi}),
            "lt": Q(**{f"{field}__lt": value.lo}), "eb": Q(**{f"{field}__lt": value.lo}),
            "le": Q(**hi), "gt": Q(**{f"{field}__gte": value.hi}), "sa": Q(**{f"{field}__gte": value.hi}),
            "ge": Q(**lo)}[value.prefix]


def all_of(search: Search, name: str, one: Callable[[Any], Q]) -> Q:
    """AND over repeated parameters, OR over each one's comma list."""
    q = Q()
    for alternatives in search.values(name):
        either = _NONE
        for value in alternatives:
            either |= one(value)
        q &= either
    return q


def string_q(fields: Iterable[str], value: StringValue) -> Q:
    """FHIR string search: starts with, case-insensitive; :contains anywhere; :exact as given."""
    lookup = {"": "istartswith", "contains": "icontains", "exact": "exact"}[value.modifier]
    q = _NONE
    for f in fields:
        q |= Q(**{f"{f}__{lookup}": value.value})
    return q


def code_only(token: Token, allowed_system: str | None = None) -> str | None:
    """The code of a token over a code list without a system of ours (status, version):
    None when the token names another system, so it matches nothing."""
    if token.system not in (None, "") and token.system != allowed_system:
        return None
    return token.code


def _id_q(search: Search, field: str = "pk", parse: Callable[[str], Any] = str) -> Q:
    def one(token: Token) -> Q:
        try:
            return Q(**{field: parse(token.code)}) if token.code and token.system is None else _NONE
        except ValueError:
            return _NONE
    return all_of(search, "_id", one)


def _int(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ValueError(value)
    return int(value)


def _order(search: Search, fields: dict[str, str]) -> list[tuple[str, bool]]:
    order = [(fields[key], desc) for key, desc in search.sort]
    if not any(f == "pk" for f, _ in order):
        order.append(("pk", order[-1][1] if order else False))
    return order


def _key_of(order: list[tuple[str, bool]]) -> Callable[[Any], Key]:
    return lambda row: [jsonable(getattr(row, f)) for f, _ in order]


def search_patients(request: HttpRequest, search: Search) -> list[Patient]:
    """The patients a compartment search names (patient= or subject=; OR lists, AND across
    repeats), each checked and audited. A malformed id is refused before it reaches the audit
    trail (a CPR number where an id belongs is written nowhere)."""
    # The check and its audit rows in one statement where it can be (patients.access_sql).
    return patients_or_404_audited(request, search_patient_ids(search), action=Action.SEARCH,
                                   resource=lambda pk: f"{search.resource_type}?patient={pk}")


def search_patient_ids(search: Search) -> list[uuid.UUID]:
    """The ids a compartment search names, sorted, unchecked (``search_patients`` checks them)."""
    groups = search.values("patient") + search.values("subject")
    if not groups:
        raise bad("patient", f"{search.resource_type} searches name the patient: patient=<id> or "
                             "subject=Patient/<id>.")
    chosen: set[uuid.UUID] | None = None
    for alternatives in groups:
        ids = set()
        for raw in alternatives:
            try:
                ids.add(uuid.UUID(raw))
            except ValueError:
                raise bad("patient", "a Patient id is a UUID.") from None
        chosen = ids if chosen is None else chosen & ids
    return sorted(chosen or ())


def _included_patients(request: HttpRequest, search: Search, patients: list[Patient],
                       found_ids: set[Any], prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    if not any(inc.split(":")[1] in prefixes for inc in search.include):
        return []
    shown = [p for p in patients if p.pk in found_ids]
    # patients were authorised by search_patients; including one is a read of the record.
    audit_record_many(user=request.user, action=Action.READ, reads=[
        (f"Patient/{p.pk} (FHIR _include)", p.pk) for p in shown], ip=None)
    return [patient_to_fhir(p, identified=can_see_identifiers(request.user)) for p in shown]


def _total(search: Search, qs: QuerySet[Any]) -> int | None:
    return qs.count() if search.total or search.summary_count else None


def _queryset_search(*, base_url: str, search: Search, qs: QuerySet[Any], sort_fields: dict[str, str],
                     to_fhir: Callable[[Any], dict[str, Any]],
                     include: Callable[[list[Any]], list[dict[str, Any]]] | None = None) -> tuple[dict[str, Any],
                                                                                             list[Any]]:
    total = _total(search, qs)
    if search.summary_count:
        return searchset_bundle(base_url=base_url, search=search, resources=[], total=total, page=None), []
    order = _order(search, sort_fields)
    page = page_queryset(qs, order, search, _key_of(order))
    included = include(page.rows) if include else []
    return searchset_bundle(base_url=base_url, search=search, resources=[to_fhir(r) for r in page.rows],
                            included=included, total=total, page=page), page.rows


# --- Observation: home readings and questionnaire scores, merged by date --------------------

def _reading_code_q(token: Token) -> Q:
    """Readings whose Observation.code carries the token: the platform's LOINC code, or the
    code the sender used (a LOINC synonym or an NPU code, kept in Reading.original)."""
    npu = ORIGINAL_SYSTEMS["NPU"]
    if token.code is None:  # system|: any code of the system
        return _ALL if token.system == LOINC else Q(original__system="NPU") if token.system == npu else _NONE
    q = _NONE
    if token.system in (None, LOINC):
        if token.code in BY_LOINC:
            q |= Q(measure=BY_LOINC[token.code].code)
        elif token.code in LOINC_SYNONYMS:
            q |= Q(measure=LOINC_SYNONYMS[token.code], original__system="LOINC", original__code=token.code)
    if token.system in (None, npu) and token.code in NPU_CODES:
        q |= Q(measure=NPU_CODES[token.code], original__system="NPU", original__code=token.code)
    return q


def _score_code_matches(score: dict[str, Any], token: Token) -> bool:
    code = score.get("code") or {}
    if token.system is not None and (code.get("system") or "") != token.system:
        return False
    return token.code is None or code.get("code") == token.code


def _categories(search: Search) -> set[str]:
    kinds = {"vital-signs", "survey"}
    for alternatives in search.values("category"):
        kinds &= {t.code for t in alternatives
                  if t.system in (None, CATEGORY_SYSTEM) and t.code in ("vital-signs", "survey")}
    return kinds


def _observation_ids(search: Search) -> tuple[Q, Q, Callable[[Any, int], bool]]:
    """_id as Q on readings, Q on responses, and a check of a score's index."""
    groups = search.values("_id")
    if not groups:
        return Q(), Q(), lambda _r, _i: True
    from interop.views_observations import _READING_ID, _SCORE_ID

    reading_q, response_q, scores = Q(), Q(), []
    for alternatives in groups:
        readings = [int(m[1]) for t in alternatives if t.code and (m := _READING_ID.fullmatch(t.code))]
        pairs = {(int(m[1]), int(m[2])) for t in alternatives if t.code and (m := _SCORE_ID.fullmatch(t.code))}
        reading_q &= Q(pk__in=readings)
        response_q &= Q(pk__in={p for p, _ in pairs})
        scores.append(pairs)
    return reading_q, response_q, lambda r, i: all((r.pk, i) in s for s in scores)


class ReadingRow(NamedTuple):
    """The columns of a reading that its Observation shows (interop.mapping.reading_to_observation)."""
    pk: int
    patient_id: uuid.UUID
    device_id: int | None
    measure: str
    value: Decimal
    value2: Decimal | None
    unit: str
    original: Any
    unusual: bool
    erroneous_at: datetime | None
    effective_at: datetime
    received_at: datetime
    client_id: str | None


class ScoredResponse(NamedTuple):
    """The columns of a completed response that its score Observations show."""
    pk: int
    patient_id: uuid.UUID
    authored_at: datetime
    scores: Any


# Merge order: (date, kind, pk, index); kind 0 = reading, 1 = score. One direction for all.
def _after_equal(kind: int, key: Key, desc: bool) -> Q | None:
    """Rows of ``kind`` at exactly the cursor's date that come after it: a Q on the pk, Q() for
    all of them, None for none (the exact index check for scores is done in Python)."""
    c_kind, c_pk = key[1], key[2]
    if kind != c_kind:
        return _ALL if (kind < c_kind) == desc else None
    if kind == 0:
        return Q(pk__lt=c_pk) if desc else Q(pk__gt=c_pk)
    return Q(pk__lte=c_pk) if desc else Q(pk__gte=c_pk)


def observation_search(request: HttpRequest, search: Search, base_url: str) -> dict[str, Any]:
    from django.utils.dateparse import parse_datetime

    ids = search_patient_ids(search)
    # The access check and its audit rows travel with the page's queries (one round trip), each
    # of which holds the check's gate: nothing of a patient out of scope is read. Where the
    # one-statement check is not available, the patients are checked first, as before.
    check = None if search.summary_count else access_check(
        request, ids, action=Action.SEARCH, resource=lambda pk: f"Observation?patient={pk}")
    patients = search_patients(request, search) if check is None else None
    gate: Any = check.gate if check is not None else Q()
    kinds = _categories(search)
    reading_ids, response_ids, score_index_ok = _observation_ids(search)
    readings = Reading.objects.filter(
        gate, patient_id__in=ids, **{} if "vital-signs" in kinds else {"pk__in": []}
    ).filter(all_of(search, "code", _reading_code_q), all_of(search, "date", lambda v: date_q("effective_at", v)),
             all_of(search, "_lastUpdated", lambda v: date_q("received_at", v)), reading_ids)
    responses = QuestionnaireResponse.objects.filter(
        gate, patient_id__in=ids, status="completed", **{} if "survey" in kinds else {"pk__in": []}
    ).exclude(scores=[]).filter(all_of(search, "date", lambda v: date_q("authored_at", v)),
                                all_of(search, "_lastUpdated", lambda v: date_q("received_at", v)), response_ids)
    code_groups = search.values("code")

    def score_ok(response: ScoredResponse, index: int, score: dict[str, Any]) -> bool:
        return score_index_ok(response, index) and all(
            any(_score_code_matches(score, t) for t in alternatives) for alternatives in code_groups)

    # A patient's scored responses are few (one or two a day at most): one query fetches all
    # that match, and the survey side is counted and paged from it in Python — no COUNT, page
    # query or cursor of its own; that query travels with the reading page (rows_together).
    survey_qs = responses.values_list(*ScoredResponse._fields) if "survey" in kinds else None

    def survey_of(fetched: list[tuple[Any, ...]]) -> list[tuple[ScoredResponse, int]]:
        found = [ScoredResponse(*row) for row in fetched]
        return [(r, i) for r in found for i, s in enumerate(r.scores) if score_ok(r, i, s)]

    if search.summary_count:
        survey = survey_of(list(survey_qs)) if survey_qs is not None else []
        counted_all = (readings.count() if "vital-signs" in kinds else 0) + len(survey)
        return searchset_bundle(base_url=base_url, search=search, resources=[], total=counted_all, page=None)

    [(_, desc)] = search.sort
    cursor = cursor_decode(search)
    key = cursor[0] if cursor else None
    if key is not None and (not isinstance(key, list) or len(key) != 4):
        raise bad("_cursor", "not a cursor of this search.")
    backwards = cursor is not None and cursor[1] == "previous"
    walk_desc = desc != backwards  # the direction rows are fetched in
    cursor_at = parse_datetime(key[0]) if key else None
    if key is not None and cursor_at is None:
        raise bad("_cursor", "not a cursor of this search.")
    position = (cursor_at, key[1], key[2], key[3]) if key else None

    def after(row_key: tuple[Any, ...]) -> bool:
        return position is None or (row_key < position if walk_desc else row_key > position)

    limit = search.count + 1
    rows: list[tuple[tuple[Any, ...], Any, int]] = []
    date_order = "-" if walk_desc else ""
    reading_qs = readings
    if key is not None:
        equal = _after_equal(0, key, walk_desc)
        strictly = Q(effective_at__lt=cursor_at) if walk_desc else Q(effective_at__gt=cursor_at)
        bound = Q(effective_at__lte=cursor_at) if walk_desc else Q(effective_at__gte=cursor_at)
        reading_qs = reading_qs.filter(bound & (strictly | (Q(effective_at=cursor_at) & equal) if equal is not None
                                                else strictly))
    order = (f"{date_order}effective_at", f"{date_order}pk")
    counted = search.total and "vital-signs" in kinds
    page_qs: Any = reading_qs
    columns: tuple[str, ...] = ReadingRow._fields
    if counted:
        # The total rides on the page query as an uncorrelated subquery (computed once, an
        # index-only scan): one round trip less than a COUNT of its own.
        page_qs = page_qs.annotate(search_total=Subquery(
            readings.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")[:1],
            output_field=IntegerField()))
        columns = (*columns, "search_total")
    # Rows as tuples, not model instances: the mapping reads a dozen columns, and a hundred
    # Reading objects cost more to build than the page costs to fetch.
    page_qs = page_qs.values_list(*columns).order_by(*order)[:limit]
    if not search.values("code") and connection.features.supports_slicing_ordering_in_compound:
        # Without a code the order runs across measures, which no index holds: PostgreSQL sorted
        # all of the patient's readings for every page (150 ms for 48,000). One page per
        # measure from reading_trend, as one UNION ALL, merged below, reads ~n rows per measure.
        parts = [reading_qs.filter(measure=m).values_list(*ReadingRow._fields).order_by(*order)[:limit]
                 for m in MEASURES]
        page_qs = parts[0].union(*parts[1:], all=True)
        columns = ReadingRow._fields
    wanted = (([Statement(check.sql, check.params)] if check is not None else [])
              + ([page_qs] if "vital-signs" in kinds else []) + ([survey_qs] if survey_qs is not None else []))
    fetched = rows_together(wanted)
    if check is not None:
        patients = check.patients(fetched.pop(0))  # Http404 if any is out of scope (audited as denied)
    assert patients is not None
    page_rows = fetched[0] if "vital-signs" in kinds else []
    survey = survey_of(fetched[-1]) if survey_qs is not None else []
    reading_total: int | None = None
    width = len(ReadingRow._fields)
    for row in page_rows:
        reading = ReadingRow(*row[:width])
        rows.append(((reading.effective_at, 0, reading.pk, 0), reading, 0))
        if len(row) > width:
            reading_total = row[width]
    total: int | None = None
    if search.total:
        if "vital-signs" not in kinds:
            reading_total = 0
        elif reading_total is None:  # no reading on this page (or the per-measure path): count them
            reading_total = readings.count()
        total = reading_total + len(survey)
    for response, index in survey:
        # A response's scores stay in their own order (index ascending) in both sort directions.
        row_key = (response.authored_at, 1, response.pk, -index if desc else index)
        if after(row_key):
            rows.append((row_key, response, index))
    rows.sort(key=lambda r: r[0], reverse=walk_desc)
    more = len(rows) > search.count
    rows = rows[:search.count]
    if backwards:
        rows.reverse()
    keys = [list(r[0]) for r in rows]
    if backwards:
        page = Page(rows, keys[-1] if keys else key, keys[0] if more and keys else None)
    else:
        page = Page(rows, keys[-1] if more and keys else None, keys[0] if keys and key is not None else None)
    resources = []
    for _, found, index in rows:
        if isinstance(found, ReadingRow):
            measure = MEASURES[found.measure]
            resources.append(reading_to_observation(found, loinc=measure.loinc, display=measure.display))
        else:
            resources.append(score_to_observation(found, found.scores[index], index))
    included = _included_patients(request, search, patients, {r[1].patient_id for r in rows},
                                  ("patient", "subject"))
    return searchset_bundle(base_url=base_url, search=search, resources=resources, included=included,
                            total=total, page=page)


# --- QuestionnaireResponse -------------------------------------------------------------------

def _questionnaire_ref_q(raw: str) -> Q:
    if raw.startswith("Questionnaire/"):
        try:
            return Q(questionnaire_id=_int(raw.removeprefix("Questionnaire/")))
        except ValueError:
            return _NONE
    url, _, version = raw.partition("|")
    return Q(questionnaire__url=url, **({"questionnaire__version": version} if version else {}))


def questionnaire_response_search(request: HttpRequest, search: Search, base_url: str) -> dict[str, Any]:
    patients = search_patients(request, search)
    qs = (QuestionnaireResponse.objects.filter(patient__in=patients, status="completed")
          .select_related("questionnaire", "patient")
          .filter(all_of(search, "authored", lambda v: date_q("authored_at", v)),
                  all_of(search, "_lastUpdated", lambda v: date_q("received_at", v)),
                  all_of(search, "status", lambda t: _ALL if code_only(t) == "completed" else _NONE),
                  _id_q(search, "pk", _int)))
    # The questionnaire parameter is a reference type in R4; its raw values are canonical urls.
    for alternatives in search.values("questionnaire"):
        either = _NONE
        for raw in alternatives:
            either |= _questionnaire_ref_q(raw)
        qs = qs.filter(either)

    def include(rows: list[Any]) -> list[dict[str, Any]]:
        out = _included_patients(request, search, patients, {r.patient_id for r in rows}, ("patient", "subject"))
        if "QuestionnaireResponse:questionnaire" in search.include:
            out += [questionnaire_to_fhir(q) for q in {r.questionnaire_id: r.questionnaire for r in rows}.values()]
        return out

    bundle, _ = _queryset_search(base_url=base_url, search=search, qs=qs, to_fhir=response_to_fhir, include=include,
                                 sort_fields={"authored": "authored_at", "_lastUpdated": "received_at", "_id": "pk"})
    return bundle


# --- Questionnaire ---------------------------------------------------------------------------

def questionnaire_search(request: HttpRequest, search: Search, base_url: str) -> dict[str, Any]:
    qs = Questionnaire.objects.filter(
        all_of(search, "url", lambda v: Q(url=v)),
        all_of(search, "name", lambda v: string_q(["resource__name"], v)),
        all_of(search, "title", lambda v: string_q(["title"], v)),
        all_of(search, "status", lambda t: Q(status=c) if (c := code_only(t)) else _NONE),
        all_of(search, "version", lambda t: Q(version=c) if (c := code_only(t)) else _NONE),
        all_of(search, "_lastUpdated", lambda v: date_q("created_at", v)),
        _id_q(search, "pk", _int))
    bundle, _ = _queryset_search(base_url=base_url, search=search, qs=qs, to_fhir=questionnaire_to_fhir,
                                 sort_fields={"url": "url", "version": "version", "title": "title",
                                              "status": "status", "_lastUpdated": "created_at", "_id": "pk"})
    return bundle


# --- Patient -----------------------------------------------------------------------------------

def _cpr_q(token: Token) -> Q:
    if token.system not in (None, CPR_SYSTEM):
        return _NONE
    if token.code is None:
        return _ALL
    digits = token.code.replace("-", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return _NONE
    return Q(cpr=f"{digits[:6]}-{digits[6:]}")


def _birthdate_q(value: DateRange) -> Q:
    """A birth date is a whole (Danish) day: the search range in days, then as for instants."""
    local = ZoneInfo(settings.TIME_ZONE)
    lo = value.lo.astimezone(local).date()
    hi = (value.hi - timedelta(microseconds=1)).astimezone(local).date() + timedelta(days=1)
    return date_q("birth_date", DateRange(value.prefix, lo, hi))  # type: ignore[arg-type]


def patient_search(request: HttpRequest, search: Search, base_url: str) -> dict[str, Any]:
    """Patients in the caller's scope (patients.access): a clinician's teams' patients, a
    patient herself; quality staff none (403, as for a read). Every patient shown is audited.
    The CPR number is searched but never echoed: links carry the matched ids instead."""
    user: Any = request.user
    for alternatives in search.values("_id"):
        for token in alternatives:
            try:
                uuid.UUID(token.code or "")
            except ValueError:
                # Refused, not just unmatched: a CPR number put where the id belongs would
                # otherwise be echoed in the self link.
                raise bad("_id", "a Patient id is a UUID.") from None
    if not can_see_identifiers(user) or user.role not in {Role.ADMIN, Role.CLINICIAN, Role.PATIENT}:
        audit_record(user=user, action=Action.SEARCH, resource="Patient search (FHIR)", outcome=Outcome.DENIED,
                     request=request)
        raise exceptions.PermissionDenied("Quality staff read pseudonymised exports, not patients.")
    qs = patients_for(user).filter(
        all_of(search, "name", lambda v: string_q(["family_name", "given_name"], v) | _given_word(v)),
        all_of(search, "family", lambda v: string_q(["family_name"], v)),
        all_of(search, "given", lambda v: string_q(["given_name"], v) | _given_word(v)),
        all_of(search, "birthdate", _birthdate_q),
        all_of(search, "_lastUpdated", lambda v: date_q("created_at", v)),
        _id_q(search, "pk", uuid.UUID))
    issues = []
    self_link = True
    if search.values("identifier"):
        qs = qs.filter(all_of(search, "identifier", _cpr_q))
        # The links say the same search by the ids found, never by the CPR number.
        matched = sorted(str(pk) for pk in qs.values_list("pk", flat=True))
        if matched:
            search.link_params.append(("_id", ",".join(matched)))
        else:
            self_link = False
        issues.append({"severity": "information", "code": "informational",
                       "diagnostics": "The identifier (CPR number) is not repeated in this Bundle's links; "
                                      "they name the patients found by id."})
    audit_record(user=user, action=Action.SEARCH, resource="Patient search (FHIR)", request=request)
    total = _total(search, qs)
    if search.summary_count:
        return searchset_bundle(base_url=base_url, search=search, resources=[], total=total, page=None,
                                issues=issues, self_link=self_link)
    order = _order(search, {"family": "family_name", "given": "given_name", "birthdate": "birth_date",
                            "_lastUpdated": "created_at", "_id": "pk"})
    page = page_queryset(qs, order, search, _key_of(order))
    audit_record_many(user=user, action=Action.READ, ip=None,
                      reads=[(f"Patient/{p.pk} (FHIR search)", p.pk) for p in page.rows])
    return searchset_bundle(base_url=base_url, search=search, total=total, page=page, issues=issues,
                            self_link=self_link, resources=[patient_to_fhir(p, identified=True) for p in page.rows])


def _given_word(value: StringValue) -> Q:
    """A later given name ("Marie" of "Alma Marie") also starts a given name."""
    return Q(given_name__icontains=" " + value.value) if value.modifier == "" else _NONE


# --- Flag and DetectedIssue ----------------------------------------------------------------------

FLAG_STATUSES = ("active", "inactive", "entered-in-error")
DETECTED_ISSUE_STATUSES = ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
                           "entered-in-error", "unknown")


def alert_search(request: HttpRequest, search: Search, base_url: str, *, qs: QuerySet[Alert],
                 to_fhir: Callable[[Alert], dict[str, Any]], status_codes: dict[str, str],
                 statuses: tuple[str, ...]) -> dict[str, Any]:
    """``status_codes``: FHIR status -> "resolved" or "open" (any unresolved state); other codes
    of the type's value set (``statuses``) match nothing; a code outside it is a mistake (400)."""
    for alternatives in search.values("status"):
        for token in alternatives:
            if token.system is None and token.code not in statuses:
                used = [code for code in statuses if code in status_codes]
                others = ", ".join(c for c in statuses if c not in used)
                raise bad("status", f"{str(token.code)[:40]!r} is not a status; use {' or '.join(used)} "
                                    f"(the other codes of the value set, {others}, are valid and match nothing here).")
    patients = search_patients(request, search)

    def status_q(token: Token) -> Q:
        state = status_codes.get(code_only(token) or "")
        return (Q(status=Status.RESOLVED) if state == "resolved" else ~Q(status=Status.RESOLVED)
                if state == "open" else _NONE)

    qs = qs.filter(patient__in=patients).filter(
        all_of(search, "status", status_q), all_of(search, "date", lambda v: date_q("raised_at", v)),
        all_of(search, "_lastUpdated", lambda v: date_q("updated_at", v)), _id_q(search, "pk", _int))

    def include(rows: list[Any]) -> list[dict[str, Any]]:
        return _included_patients(request, search, patients, {r.patient_id for r in rows}, ("patient",))

    bundle, _ = _queryset_search(base_url=base_url, search=search, qs=qs, to_fhir=to_fhir, include=include,
                                 sort_fields={"date": "raised_at", "_lastUpdated": "updated_at", "_id": "pk"})
    return bundle


# --- Group (cohorts; the view in outcomes checks the role) --------------------------------------

def group_search(search: Search, base_url: str, qs: QuerySet[Any],
                 to_fhir: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    qs = qs.filter(all_of(search, "name", lambda v: string_q(["name"], v)), _id_q(search, "pk", _int))
    bundle, _ = _queryset_search(base_url=base_url, search=search, qs=qs, to_fhir=to_fhir,
                                 sort_fields={"name": "name", "_id": "pk"})
    return bundle
