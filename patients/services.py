
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role, User
from audit.models import Action
from audit.services import audit_record
from patients.models import Patient, RelativeGrant


def relative_grant(*, patient: Patient, username: str, relationship: str,
                   request: HttpRequest | None = None) -> RelativeGrant:
    """Let the relative with ``username`` answer questionnaires for ``patient``."""
    relative = User.objects.filter(username=username, role=Role.RELATIVE, is_active=True).first()
    if relative is None:
        raise ValidationError({"username": _(
            "There is no relative's login with that user name. Your department can create one.")})
    with transaction.atomic():
        if RelativeGrant.objects.filter(patient=patient, relative=relative, revoked_at=None).exists():
            raise ValidationError({"username": _("This person can already answer for you.")})
        grant = RelativeGrant.objects.create(patient=patient, relative=relative, relationship=relationship)
        audit_record(user=getattr(request, "user", None), action=Action.CREATE,
                     resource=f"RelativeGrant/{grant.pk}", patient_id=patient.pk, request=request)
    return grant


def relative_revoke(*, grant: RelativeGrant, request: HttpRequest | None = None) -> None:
    with transaction.atomic():
        RelativeGrant.objects.filter(pk=grant.pk, revoked_at=None).update(revoked_at=timezone.now())
        audit_record(user=getattr(request, "user", None), action=Action.UPDATE,
                     resource=f"RelativeGrant/{grant.pk} revoke", patient_id=grant.patient_id, request=request)
