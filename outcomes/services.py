"""Writes for cohorts. Each change is validated in full (the same rules whichever path calls)
and audited."""

from typing import Any

from django.db import transaction

from audit.models import Action
from audit.services import audit_record
from outcomes.models import Cohort


@transaction.atomic
def cohort_save(*, cohort: Cohort, user: Any, request: Any = None) -> Cohort:
    """Create or update a cohort. Raises ValidationError (per field) and stores nothing when a
    criterion is invalid."""
    creating = cohort.pk is None
    if creating:
        cohort.created_by = user
    cohort.full_clean()
    cohort.save()
    audit_record(user=user, action=Action.CREATE if creating else Action.UPDATE,
                 resource=f"Cohort/{cohort.pk}", request=request)
    return cohort


@transaction.atomic
def cohort_delete(*, cohort: Cohort, user: Any, request: Any = None) -> None:
    # The audit trail has no "delete" action; a deletion is the last update of the cohort.
    audit_record(user=user, action=Action.UPDATE, resource=f"Cohort/{cohort.pk} deleted ({cohort.name})",
                 request=request)
    cohort.delete()
