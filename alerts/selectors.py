import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Prefetch, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from alerts.models import Alert, AlertFinding, Rule, RuleOverride, Severity, Snooze, Status
from patients.access import Requester, patients_for
from patients.models import CareTeam, Patient, Program, TreatmentEpisode, age_on

UNRESOLVED = (Status.OPEN, Status.ACKNOWLEDGED)


def alerts_for(user: Requester) -> QuerySet[Alert]:
    """Alerts on patients the user may see (patients.access decides)."""
    return Alert.objects.filter(patient__in=patients_for(user).values("pk"))


@dataclass(frozen=True)
class WorklistFilter:
    """The worklist's filters (GET parameters of /triage/, the websocket's query string).
    ``None`` means "any"; ``assigned_to`` is a user id ("assigned to me")."""

    team_id: int | None = None
    program_id: int | None = None
    severity: str | None = None
    assigned_to: int | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.team_id, self.program_id, self.severity, self.assigned_to))


def _int_or_none(raw: Any) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def worklist_filter_parse(params: Mapping[str, Any], user: User) -> WorklistFilter:
    """Filters from a QueryDict (or dict of lists). Values the user cannot choose (another
    team's id, an unknown severity) are dropped rather than refused: a filter only ever narrows
    the user's own worklist, so a stale bookmark shows everything instead of an error page."""

    def get(name: str) -> Any:
        value = params.get(name)
        return value[-1] if isinstance(value, list) and value else value

    team_id = _int_or_none(get("team"))
    if team_id is not None and not worklist_teams(user).filter(pk=team_id).exists():
        team_id = None
    program_id = _int_or_none(get("program"))
    if program_id is not None and not worklist_programs(user).filter(pk=program_id).exists():
        program_id = None
    severity = get("severity")
    if severity not in Severity.values:
        severity = None
    mine = get("mine") in ("1", "on", "true")
    return WorklistFilter(team_id=team_id, program_id=program_id, severity=severity,
                          assigned_to=user.pk if mine else None)


def worklist_teams(user: Requester) -> QuerySet[CareTeam]:
    from patients.access import teams_for

    return teams_for(user).order_by("name")


def worklist_programs(user: Requester) -> QuerySet[Program]:
    """Programmes with patients in the user's scope: the choices of the programme filter."""
    return Program.objects.filter(episodes__patient__in=patients_for(user).values("pk")).distinct().order_by("name")


def alerts_filtered(user: Requester, f: WorklistFilter | None = None) -> QuerySet[Alert]:
    """The user's alerts narrowed by ``f``, any status. Team is matched through the patient's
    episodes with EXISTS, so a patient on two teams is not listed twice."""
    qs = alerts_for(user)
    if f is None:
        return qs
    if f.team_id is not None:
        qs = qs.filter(Exists(TreatmentEpisode.objects.filter(patient_id=OuterRef("patient_id"),
                                                              care_team_id=f.team_id)))
    if f.program_id is not None:
        qs = qs.filter(rule__program_id=f.program_id)
    if f.severity is not None:
        qs = qs.filter(severity=f.severity)
    if f.assigned_to is not None:
        qs = qs.filter(assigned_to_id=f.assigned_to)
    return qs


def worklist(user: Requester, f: WorklistFilter | None = None) -> QuerySet[Alert]:
    """Unresolved alerts: open red, open yellow, then acknowledged red and yellow (someone is on
    those); within each, oldest first — the longest-waiting patient is on top."""
    return (
        alerts_filtered(user, f)
        .filter(status__in=UNRESOLVED)
        .select_related("patient", "rule__program", "acknowledged_by", "assigned_to")
        .annotate(
            rank=Case(
                When(status=Status.OPEN, severity=Severity.RED, then=Value(0)),
                When(status=Status.OPEN, then=Value(1)),
                When(severity=Severity.RED, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            ),
            finding_count=Count("findings"),
        )
        .order_by("rank", "raised_at", "pk")
    )


@dataclass
class WorklistRow:
    """One patient on the worklist: their unresolved alerts in worklist order (worst first)."""

    patient: Patient
    age: int
    alerts: list[Alert]

    @property
    def worst(self) -> Alert:
        return self.alerts[0]

    @property
    def programs(self) -> list[str]:
        return sorted({a.rule.program.name for a in self.alerts if a.rule_id})


def worklist_rows(alerts: Iterable[Alert]) -> list[WorklistRow]:
    """The worklist as one row per patient, in the order of each patient's worst alert (open red,
    open yellow, acknowledged red, acknowledged yellow; the longest waiting first): a patient
    with three alerts is one row, not three cards scattered down the page. static/js/triage.js
    groups the live feed the same way."""
    today = timezone.localdate()
    rows: dict[uuid.UUID, WorklistRow] = {}
    for alert in alerts:
        row = rows.get(alert.patient_id)
        if row is None:
            row = rows[alert.patient_id] = WorklistRow(
                patient=alert.patient, age=age_on(alert.patient.birth_date, today), alerts=[])
        row.alerts.append(alert)
    return list(rows.values())


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.get_full_name() or user.get_username()}


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The one JSON shape of an alert, for the REST API and the websocket alike. The patient's
    CPR number and age are in it because the worklist shows them (a nurse tells two patients of
    the same name apart by them); it goes only to people who may see the patient, and is never
    logged."""
    finding_count = getattr(alert, "finding_count", None)
    if finding_count is None:
        finding_count = alert.findings.count()
    new_evidence = bool(alert.status == Status.ACKNOWLEDGED and alert.acknowledged_at
                        and alert.updated_at > alert.acknowledged_at)
    return {
        "id": alert.pk,
        "patient": {"id": str(alert.patient_id), "name": alert.patient.name, "cpr": alert.patient.cpr,
                    "age": age_on(alert.patient.birth_date, timezone.localdate())},
        "severity": alert.severity,
        "severity_label": str(alert.get_severity_display()),
        "status": alert.status,
        "reason": alert.reason,
        "evidence": alert.evidence,
        "rule": alert.rule.name if alert.rule_id else None,
        "program_id": alert.rule.program_id if alert.rule_id else None,
        "program": alert.rule.program.name if alert.rule_id else None,
        "raised_at": alert.raised_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "new_evidence": new_evidence,
        "assigned_to": _person(alert.assigned_to),
        "finding_count": finding_count,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "outcome": alert.outcome or None,
        "url": reverse("patient-detail", args=[alert.patient_id]) + f"#alert-{alert.pk}",
    }


def alerts_unresolved_for_patient(patient: Patient) -> QuerySet[Alert]:
    return (Alert.objects.filter(patient=patient, status__in=UNRESOLVED)
            .select_related("rule", "acknowledged_by", "assigned_to")
            .prefetch_related(Prefetch("findings", queryset=AlertFinding.objects.order_by("-found_at", "-pk")))
            .order_by("severity", "raised_at"))  # "red" sorts before "yellow": red first


def alerts_citing_reading(patient: Patient, reading_id: int) -> list[Alert]:
    """The patient's unresolved alerts that a reading is behind: as the source of a finding, or
    among the readings its evidence names (``reading_id``; ``reading_ids`` of a window or a
    combination). A patient has few unresolved alerts, so they are checked here rather than by a
    JSON query that SQLite cannot run."""
    def cites(source_key: str, evidence: Any) -> bool:
        if source_key == f"reading:{reading_id}":
            return True
        if not isinstance(evidence, dict):
            return False
        return evidence.get("reading_id") == reading_id or reading_id in (evidence.get("reading_ids") or [])

    return [alert for alert in alerts_unresolved_for_patient(patient)
            if cites(alert.source_key, alert.evidence) or any(cites(f.source_key, f.evidence)
                                                              for f in alert.findings.all())]


def alerts_resolved_for_patient(patient: Patient, limit: int = 20) -> QuerySet[Alert]:
    return (Alert.objects.filter(patient=patient, status=Status.RESOLVED).select_related("rule", "resolved_by")
            .order_by("-resolved_at")[:limit])


def assignable_clinicians(patient: Patient) -> QuerySet[User]:
    """Who an alert on ``patient`` can be assigned to: active clinicians on one of the
    patient's care teams (the people who can see the patient and act on it)."""
    return (User.objects.filter(role=Role.CLINICIAN, is_active=True,
                                care_teams__episodes__patient=patient)
            .distinct().order_by("first_name", "last_name", "username"))


def snoozes_active(patient: Patient, now: datetime) -> QuerySet[Snooze]:
    return (Snooze.objects.filter(patient=patient, ended_at=None, until__gt=now).select_related("created_by")
            .order_by("until"))


def rules_running_for(patient_id: uuid.UUID, day: date) -> QuerySet[Rule]:
    """Active rules of every programme in which the patient has an episode running on ``day``.
    One filter() call, so that every episode condition applies to the same episode (separate
    calls join the episodes twice, and another patient's open episode would count). May repeat a
    rule (two episodes of one programme): add ``.distinct()`` where that matters."""
    return Rule.objects.filter(
        Q(program__episodes__end=None) | Q(program__episodes__end__gte=day),
        active=True, program__episodes__patient_id=patient_id, program__episodes__treatment_start__lte=day,
    )


def rules_for_patient(patient: Patient) -> QuerySet[Rule]:
    """Active rules of the patient's programmes (any episode): what per-patient overrides apply to
    (not the instruments' safety nets, which have no limits to override)."""
    return (Rule.objects.filter(active=True, program__episodes__patient=patient, safety_net_for="")
            .select_related("program").distinct().order_by("program__name", "name"))


def rule_overrides_for_patient(patient: Patient) -> QuerySet[RuleOverride]:
    return (RuleOverride.objects.filter(patient=patient)
            .select_related("rule", "created_by", "ended_by").order_by("-created_at", "-pk"))
