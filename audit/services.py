"""The one way audit rows are written."""

import uuid
from typing import Any

from django.http import HttpRequest

from audit.models import Action, AuditEvent, Outcome
from proplatform.middleware import current_request_id


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    user: Any,
    action: Action,
    resource: str,
    outcome: Outcome = Outcome.ALLOWED,
    patient_id: uuid.UUID | None = None,
    request: HttpRequest | None = None,
    ip: str | None = None,
) -> AuditEvent:
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AuditEvent.objects.create(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else "",
        role=getattr(user, "role", "") if authenticated else "",
        patient_ref=patient_id,
        action=action,
        resource=resource[:300],
        outcome=outcome,
        client_ip=ip or client_ip(request),
        request_id=current_request_id(),
    )
