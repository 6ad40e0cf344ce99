"""The one way audit rows are written."""

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest

from audit.models import Action, AuditEvent, Outcome
from proplatform.input import storable_text
from proplatform.middleware import current_request_id
from proplatform.privacy import redact_cpr


class Actor(Protocol):
    """Who an audit row names: a person (accounts.User; AnonymousUser before signing in), a
    system client (smart.principal.SystemPrincipal) or a device
    (monitoring.authentication.DevicePrincipal). Only a User is linked; the others are named by
    ``get_username()`` and, when they have one, their ``role``."""

    @property
    def is_authenticated(self) -> bool: ...

    def get_username(self) -> str: ...


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address. Behind our TLS proxy that is the last X-Forwarded-For entry — the
    one our proxy wrote; entries before it come from the client and can be forged."""
    if request is None:
        return None
    if settings.BEHIND_TLS_PROXY:
        forwarded: list[str] = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if forwarded:
            return forwarded[-1]
    remote: str | None = request.META.get("REMOTE_ADDR")
    return remote or None


def audit_record(
    *,
    user: Actor | None,
    action: Action,
    resource: str,
    outcome: Outcome = Outcome.ALLOWED,
    patient_id: uuid.UUID | None = None,
    request: HttpRequest | None = None,
    ip: str | None = None,
) -> AuditEvent:
    event = _event(user=user, action=action, resource=resource, outcome=outcome, patient_id=patient_id,
                   ip=ip or client_ip(request))
    event.save(force_insert=True)
    return event


def audit_record_many(*, user: Actor | None, action: Action, reads: Sequence[tuple[str, uuid.UUID | None]],
                      ip: str | None = None) -> None:
    """One row per (resource, patient id) in ``reads``, all by one person, in one INSERT (e.g. a
    burst of live alert pushes to one triage page)."""
    AuditEvent.objects.bulk_create([_event(user=user, action=action, resource=resource, outcome=Outcome.ALLOWED,
                                           patient_id=patient_id, ip=ip) for resource, patient_id in reads])


def audit_insert_sql(*, user: Actor | None, action: Action, reads: list[tuple[str, uuid.UUID]], ip: str | None,
                     allowed_ids_sql: str, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """An ``INSERT ... SELECT`` of one audit row per (resource, patient id) in ``reads``, whose
    outcome is decided by the database: allowed when the patient id is among the ids
    ``allowed_ids_sql`` selects, denied otherwise. Meant for a data-modifying CTE beside the
    access check (patients.access_sql), so the check and its audit rows are one statement,
    one round trip and one transaction: the row cannot be lost while the read goes ahead.
    The rows are the ones ``audit_record`` writes (``_event``), outcome aside. PostgreSQL only."""
    fields = _insert_fields()
    head, tail = _insert_sql_parts(connection.alias, allowed_ids_sql)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for resource, patient_id in reads:
        event = _event(user=user, action=action, resource=resource, outcome=Outcome.DENIED,
                       patient_id=patient_id, ip=ip)
        params += [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    return head + ", ".join([row] * len(reads)) + tail, params


@cache
def _insert_fields() -> tuple[Any, ...]:
    return tuple(f for f in AuditEvent._meta.concrete_fields if not f.primary_key)


@cache
def _insert_sql_parts(alias: str, allowed_ids_sql: str) -> tuple[str, str]:
    """The text of audit_insert_sql around its VALUES rows (the same for every request)."""
    connection = connections[alias]
    fields = _insert_fields()
    quote = connection.ops.quote_name
    patient_column = quote(next(f.column for f in fields if f.attname == "patient_ref"))
    outcome = (f"CASE WHEN v.{patient_column}::uuid IN ({allowed_ids_sql}) THEN '{Outcome.ALLOWED.value}' "
               f"ELSE '{Outcome.DENIED.value}' END")
    selected = ", ".join(outcome if f.attname == "outcome" else f"v.{quote(f.column)}::{f.db_type(connection)}"
                         for f in fields)
    listed = ", ".join(quote(f.column) for f in fields)
    # Only the model's own identifiers and types are written into the text; values are parameters.
    return (f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({listed}) SELECT {selected} "  # noqa: S608
            "FROM (VALUES ", f") AS v ({listed})")


def _event(*, user: Actor | None, action: Action, resource: str, outcome: Outcome, patient_id: uuid.UUID | None,
           ip: str | None) -> AuditEvent:
    actor = user if user is not None and user.is_authenticated else None
    return AuditEvent(
        # A device (monitoring.authentication.DevicePrincipal) is named, not linked: it is no User.
        user=actor if isinstance(actor, get_user_model()) else None,
        username=actor.get_username() if actor is not None else "",
        role=getattr(actor, "role", "") if actor is not None else "",
        patient_ref=patient_id,
        action=action,
        # What a caller sent may hold NUL or half a character: escaped, or the row (often the
        # record of a refusal) would fail in PostgreSQL.
        resource=storable_text(redact_cpr(resource))[:300],
        outcome=outcome,
        client_ip=ip,
        request_id=current_request_id(),
    )
