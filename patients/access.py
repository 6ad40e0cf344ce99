"""The one place that decides which patients a person may see.

Every page, REST view, FHIR endpoint and websocket consumer asks here. Rules:
- a patient sees only themself;
- a clinician sees the patients whose treatment episodes belong to one of their care teams, while
  the episode runs and for ``CARE_ACCESS_GRACE_DAYS`` (default 90) after it ended — time to
  finish the follow-up and answer the patient's questions, not a lasting right to the record —
  and after that for as long as the team has unfinished work for the patient (an unresolved
  alert, answers not yet reviewed);
- an administrator sees everyone;
- quality staff see no identified patient at all: they work with aggregated and pseudonymised
  data (outcomes app), never with a Patient row;
- a system client (SMART Backend Services, ADR 0018) sees every patient who has not withdrawn
  from secondary use — if an administrator allowed it identified data; otherwise none (it gets
  pseudonymised $export files). Its scopes decide the resource types (smart.permissions).
Answering questionnaires is a narrower purpose with a wider circle: besides the patient, a
relative the patient granted it (RelativeGrant) may answer for them — and do nothing else: no
record, no history, no identifiers (``patients_for_answering``, ``purpose="answer"``).
Objects outside a person's scope answer 404, so their existence is not revealed.
"""

import operator
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import reduce
from typing import Literal

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role, User
from audit.models import Action, Outcome
from audit.services import audit_record
from patients.models import CareTeam, Patient, TreatmentEpisode
from smart.principal import SystemPrincipal

Purpose = Literal["read", "answer"]
# Who asks: a person (a User, or AnonymousUser before anyone signed in) or a system client
# (ADR 0018). A device (monitoring.authentication.DevicePrincipal) reads nothing and is refused
# before these; were one passed, its role "device" would see no one.
Requester = User | AnonymousUser | SystemPrincipal | None

# Unfinished work that keeps a team's access after the grace period is held by apps above this
# one (alerts: an alert not resolved; questionnaires: completed answers nobody has reviewed). Each
# registers, from its AppConfig.ready, an EXISTS over its own rows for the patient given as an
# OuterRef, so this module names no app above it (docs/architecture.md, "Layers").
UnfinishedWork = Callable[[OuterRef], Exists]
_unfinished_work: dict[str, UnfinishedWork] = {}


def unfinished_work_register(name: str, work: UnfinishedWork) -> None:
    """Declare a kind of unfinished work for a patient that keeps their team's access (see above)."""
    _unfinished_work[name] = work


def unfinished_work_kinds() -> list[str]:
    return sorted(_unfinished_work)


def patients_for(user: Requester, *, on: date | None = None) -> QuerySet[Patient]:
    """``on``: the Danish calendar day the grace period is counted from (today)."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return Patient.objects.none()
    if isinstance(user, SystemPrincipal):  # role "system": no person's role below applies to it
        # A backend service is secondary use: patients who withdrew from it are not there.
        return (Patient.objects.filter(secondary_use_withdrawn_at__isnull=True) if user.identified_allowed
                else Patient.objects.none())
    if user.role == Role.ADMIN:
        return Patient.objects.all()
    if user.role == Role.PATIENT:
        return Patient.objects.filter(user=user)
    if user.role == Role.CLINICIAN:
        # After the grace period the team still sees a patient it has unfinished work for: an
        # alert not resolved, or answers nobody has marked as reviewed. Access ends when the work
        # does, never with an open alert on nobody's worklist.
        in_care = Exists(care_episodes(user, on=on).filter(patient=OuterRef("pk")))
        unfinished = [work(OuterRef("pk")) for work in _unfinished_work.values()]
        if not unfinished:
            return Patient.objects.filter(in_care)
        team_episode = TreatmentEpisode.objects.filter(care_team__members=user, patient=OuterRef("pk"))
        return Patient.objects.filter(in_care | (Exists(team_episode) & reduce(operator.or_, unfinished)))
    return Patient.objects.none()


def episodes_in_care(*, on: date | None = None) -> QuerySet[TreatmentEpisode]:
    """Episodes through which a care team can see a patient on ``on`` (a Danish calendar day):
    not started yet (baseline answers come before the treatment starts), running, or ended less
    than ``CARE_ACCESS_GRACE_DAYS`` ago. What a patient answers is offered, and judged by the
    instrument's safety net, only within these: an answer outside them would reach nobody."""
    on = on or timezone.localdate()
    ended_after = on - timedelta(days=settings.CARE_ACCESS_GRACE_DAYS)
    return TreatmentEpisode.objects.filter(Q(end__isnull=True) | Q(end__gte=ended_after))


def care_episodes(user: User, *, on: date | None = None) -> QuerySet[TreatmentEpisode]:
    """The episodes through which a clinician has access: their teams' episodes that have not
    ended, or ended less than ``CARE_ACCESS_GRACE_DAYS`` ago (Danish calendar days)."""
    ended_after = (on or timezone.localdate()) - timedelta(days=settings.CARE_ACCESS_GRACE_DAYS)
    return TreatmentEpisode.objects.filter(care_team__members=user).filter(
        Q(end__isnull=True) | Q(end__gte=ended_after))


def patients_for_answering(user: Requester) -> QuerySet[Patient]:
    """Whose questionnaires ``user`` may fill in: their own, or — for a relative — those of the
    patients who granted it and have not revoked it."""
    if (user is None or isinstance(user, AnonymousUser | SystemPrincipal) or not user.is_authenticated
            or not user.is_active):
        return Patient.objects.none()
    if user.role == Role.PATIENT:
        return Patient.objects.filter(user=user)
    if user.role == Role.RELATIVE:
        return Patient.objects.filter(relative_grants__relative=user,
                                      relative_grants__revoked_at=None).distinct()
    return Patient.objects.none()


def teams_for(user: Requester) -> QuerySet[CareTeam]:
    if user is None or isinstance(user, AnonymousUser | SystemPrincipal) or not user.is_authenticated:
        return CareTeam.objects.none()
    if user.role == Role.ADMIN:
        return CareTeam.objects.all()
    if user.role == Role.CLINICIAN:
        return CareTeam.objects.filter(members=user)
    return CareTeam.objects.none()


def can_see_identifiers(user: Requester) -> bool:
    # Quality staff and analysts (aggregates only) never see who a patient is.
    return (user is not None and not isinstance(user, AnonymousUser) and user.is_authenticated
            and user.role not in (Role.QUALITY, Role.ANALYST))


def patient_or_404(
    request: HttpRequest,
    patient_id: uuid.UUID | str,
    *,
    user: Requester = None,
    action: Action = Action.READ,
    resource: str,
    purpose: Purpose = "read",
) -> Patient:
    """Fetch a patient the requester may see (or, with ``purpose="answer"``, answer for),
    auditing the access either way."""
    user = user if user is not None else request.user
    try:
        pk = uuid.UUID(str(patient_id))
    except ValueError:
        pk = None
    scope = patients_for_answering(user) if purpose == "answer" else patients_for(user)
    patient = scope.filter(pk=pk).first() if pk else None
    audit_record(
        user=user,
        action=action,
        resource=resource,
        outcome=Outcome.ALLOWED if patient else Outcome.DENIED,
        patient_id=pk,
        request=request,
    )
    if patient is None:
        raise Http404("No such patient.")
    return patient


def own_patient_or_404(request: HttpRequest, *, action: Action = Action.READ, resource: str) -> Patient:
    """The logged-in patient's own record, audited like any other access (a patient reading
    their own data is still a person reading a patient's data)."""
    patient = getattr(request.user, "patient", None)
    if patient is None:
        raise Http404("No patient record for this login.")
    return patient_or_404(request, patient.pk, action=action, resource=resource)


def clinician_patient_or_404(request: AuthenticatedHttpRequest, patient_id: uuid.UUID | str, *, resource: str,
                             action: Action = Action.READ) -> Patient:
    """The patient, for a clinician on one of their teams (or an administrator). Other roles are
    refused by role before any lookup; that is still audited as an attempt on the record."""
    if request.user.role not in {Role.CLINICIAN, Role.ADMIN}:
        audit_record(user=request.user, action=action, resource=resource, outcome=Outcome.DENIED,
                     patient_id=patient_id if isinstance(patient_id, uuid.UUID) else None, request=request)
        raise PermissionDenied
    return patient_or_404(request, patient_id, action=action, resource=resource)
