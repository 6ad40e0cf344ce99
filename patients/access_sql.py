"""The access check of patients.access and its audit rows in one statement (PostgreSQL).

``patients_or_404_audited`` answers what ``patient_or_404`` answers for each of several patient
ids — the patients the person may see, every id audited as allowed or denied, 404 if any is
denied — in one round trip instead of a SELECT and an INSERT per patient. The check is still
``patients_for``'s: its query is compiled by the ORM once per role and kept as SQL with the
person and the day as parameters, so the rule keeps one home (patients.access) and a change
there is a change here. The audit rows are an ``INSERT`` in a data-modifying CTE of the same
statement, whose outcome the database takes from the check itself: one transaction, so no
read goes ahead without its row.

Elsewhere (SQLite, other roles, a person who is not a User) it is ``patient_or_404`` per id.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any, TypeGuard

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest
from django.utils import timezone

from accounts.models import Role, User
from audit.models import Action
from audit.services import audit_insert_sql, client_ip
from patients.access import Requester, patient_or_404, patients_for
from patients.models import Patient

# Roles whose scope depends on nothing but the person's id and today's date.
_COMPILED_ROLES = (Role.CLINICIAN, Role.PATIENT, Role.ADMIN)
# Stand-ins while the scope is compiled: no user has this id, no grace period starts on this day.
_USER = -(2**62) - 7
_DAY = date(1001, 1, 1)
_ATTNAMES = tuple(f.attname for f in Patient._meta.concrete_fields)


class _Slot:
    def __init__(self, name: str) -> None:
        self.name = name


_USER_SLOT, _ENDED_SLOT = _Slot("user"), _Slot("ended_after")


@cache
def _scope_sql(role: str, grace_days: int) -> tuple[str, tuple[Any, ...]]:
    """``patients_for`` of a person in ``role`` as SQL, and its parameters with the person's id
    and the grace period's first day as slots (found by the stand-in values compiled in)."""
    stand_in = User(pk=_USER, role=role, is_active=True)
    qs = patients_for(stand_in, on=_DAY).values_list(*_ATTNAMES)
    sql, params = qs.query.sql_with_params()
    ended = _DAY - timedelta(days=grace_days)
    slots = tuple(_USER_SLOT if p == _USER and not isinstance(p, bool)
                  else _ENDED_SLOT if isinstance(p, date) and p == ended else p for p in params)
    return sql, slots


def _fast(user: Requester) -> TypeGuard[User]:
    return (connection.vendor == "postgresql" and isinstance(user, User) and user.is_authenticated
            and user.is_active and user.role in _COMPILED_ROLES)


@dataclass
class AccessCheck:
    """The check of ``ids`` with its audit rows as one statement (``sql``, ``params``; it selects the
    visible patients' columns), and ``gate``: a condition that holds only when every id is
    visible, for the queries that read the patients' data in the same round trip — so that
    nothing of a patient out of scope is read even when the check has not been answered yet."""
    ids: list[uuid.UUID]
    sql: str
    params: list[Any]
    gate: RawSQL

    def patients(self, rows: list[tuple[Any, ...]]) -> list[Patient]:
        """The checked patients (in ``ids`` order) from the statement's rows; Http404 when any
        is out of scope (its denied audit row is written already)."""
        visible = {row[0]: Patient.from_db(connection.alias, list(_ATTNAMES), row) for row in rows}
        if any(pk not in visible for pk in self.ids):
            raise Http404("No such patient.")
        return [visible[pk] for pk in self.ids]


def access_check(request: HttpRequest, ids: Sequence[uuid.UUID], *, action: Action,
                 resource: Callable[[uuid.UUID], str]) -> AccessCheck | None:
    """The one-statement check of ``ids`` (at least one), or None where it is not available
    (SQLite, other roles): then ``patients_or_404_audited``'s per-id path is the way."""
    user = request.user
    if not ids or not _fast(user):
        return None
    scope, slots = _scope_sql(user.role, settings.CARE_ACCESS_GRACE_DAYS)
    ended_after = timezone.localdate() - timedelta(days=settings.CARE_ACCESS_GRACE_DAYS)
    scope_params = [user.pk if s is _USER_SLOT else ended_after if s is _ENDED_SLOT else s for s in slots]
    insert, insert_params = audit_insert_sql(user=user, action=action, reads=[(resource(pk), pk) for pk in ids],
                                             ip=client_ip(request), allowed_ids_sql="SELECT id FROM visible",
                                             connection=connection)
    columns = ", ".join(connection.ops.quote_name(a) for a in _ATTNAMES)
    # The text is the ORM's compiled scope and the model's column names; values are parameters.
    sql = (f"WITH visible AS (SELECT {columns} FROM ({scope}) AS scope WHERE scope.id = ANY(%s)), "  # noqa: S608
           f"audit AS ({insert}) SELECT {columns} FROM visible")
    gate = RawSQL(f"(SELECT count(*) FROM ({scope}) AS scope WHERE scope.id = ANY(%s)) = %s",  # noqa: S608, S611
                  (*scope_params, list(ids), len(ids)), output_field=BooleanField())
    return AccessCheck(list(ids), sql, [*scope_params, list(ids), *insert_params], gate)


def patients_or_404_audited(request: HttpRequest, ids: Sequence[uuid.UUID], *, action: Action,
                            resource: Callable[[uuid.UUID], str]) -> list[Patient]:
    """The patients ``ids`` names (in that order), each checked by patients.access and audited
    (``resource(id)`` names the access); Http404 when any of them is out of the person's scope —
    after every id's row is written."""
    check = access_check(request, ids, action=action, resource=resource)
    if check is None:
        found: list[Patient | None] = []
        for pk in ids:  # every id checked and audited, as in the one statement
            try:
                found.append(patient_or_404(request, pk, action=action, resource=resource(pk)))
            except Http404:
                found.append(None)
        if None in found:
            raise Http404("No such patient.")
        return [p for p in found if p is not None]
    with connection.cursor() as cursor:
        cursor.execute(check.sql, check.params)
        return check.patients(cursor.fetchall())
