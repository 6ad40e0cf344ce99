"""Who may export which patients (ADR 0007). Builds on patients.access; every export leaves out
patients who withdrew from secondary use."""

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from accounts.models import Role, User
from patients.access import Requester, patients_for
from patients.models import Patient
from smart.principal import SYSTEM_ROLE, SystemPrincipal, is_system

if TYPE_CHECKING:
    from outcomes.models import Cohort


class ExportError(Exception):
    """A refused export request, with the HTTP status and FHIR issue code to answer it with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _cohort_for(user: User | SystemPrincipal, group_id: str) -> "Cohort":
    """The cohort behind Group/{id}, or a 404 error when it does not exist or ``user`` may not
    see it — the same answer, so a Group's existence is not revealed (as patients.access does)."""
    from outcomes.models import Cohort  # noqa: F811 - the cohorts engineer's model; imported late on purpose

    not_found = ExportError(404, "not-found", f"No such Group: {group_id}.")
    # Cohorts are quality work: quality staff and administrators see them, nobody else.
    if user.role not in (Role.QUALITY, Role.ADMIN, SYSTEM_ROLE) or not str(group_id).isdigit():
        raise not_found
    cohort = Cohort.objects.filter(pk=int(group_id)).first()
    if cohort is None:
        raise not_found
    return cohort


def export_patients(*, user: Requester, kind: str, group_id: str = "", identified: bool) -> QuerySet[Patient]:
    """The patients an export by ``user`` covers, evaluated now (membership of a Group too)."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        raise ExportError(401, "login", "Log in to export.")
    if is_system(user):
        # A system client (ADR 0018) exports across all patients; pseudonymised unless an
        # administrator allowed it identified data. Its scopes narrow the types (services).
        if identified and not user.identified_allowed:
            raise ExportError(403, "forbidden", "This system client receives pseudonymised exports only; leave "
                                                "out 'identified' (an administrator may allow identified data).")
        scope = Patient.objects.all()
    else:
        if user.role not in (Role.ADMIN, Role.CLINICIAN, Role.QUALITY):
            raise ExportError(403, "forbidden", "Bulk export is for clinicians, quality staff and administrators.")
        if identified and user.role == Role.QUALITY:
            raise ExportError(403, "forbidden", "Quality staff export pseudonymised data only; leave out "
                                                "'identified'.")
        scope = Patient.objects.all() if user.role in (Role.ADMIN, Role.QUALITY) else patients_for(user)
    if kind == "group":
        from outcomes.selectors import cohort_patient_ids

        cohort = _cohort_for(user, group_id)
        scope = scope.filter(pk__in=cohort_patient_ids(cohort=cohort))
    # Withdrawal from secondary use applies to every bulk export, identified ones too: bulk
    # export is a secondary-use tool; care for the patient reads the record pages.
    return scope.filter(secondary_use_withdrawn_at__isnull=True)
