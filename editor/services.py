"""Writes of the programme editor. Each goes through the owning app's service (rule_save keeps
the revision with who and why) and leaves an audit row."""

from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.models import User
from alerts.definitions import rule_save
from alerts.models import Rule, RuleRevision
from audit.models import Action
from audit.services import audit_record
from patients.models import CareTeam, Patient, Program, TreatmentEpisode


def program_rule_save(*, program: Program, kind: str, rule: Rule | None, name: str, severity: str,
                      params: dict[str, Any], cooldown: timedelta, by: User, reason: str,
                      request: HttpRequest | None = None) -> Rule:
    """Add a rule to ``program`` or change one of its rules: a new version and revision."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the rule is added or changed.")})
    if rule is None:
        rule = Rule(program=program, kind=kind)
    elif rule.program_id != program.pk or rule.kind != kind:
        raise ValidationError(_("This rule belongs to another programme or kind."))
    rule.name, rule.severity, rule.params, rule.cooldown = name, severity, params, cooldown
    with transaction.atomic():
        created = rule.pk is None
        rule_save(rule=rule, by=by, reason=reason.strip())
        audit_record(user=by, action=Action.CREATE if created else Action.UPDATE,
                     resource=f"Rule/{rule.pk} v{rule.version}", request=request)
    return rule


def rule_rollback(*, rule: Rule, version: int, by: User, reason: str,
                  request: HttpRequest | None = None) -> Rule:
    """Bring back the definition of an earlier version. History is never rewritten: the rollback
    is a new version whose revision says which one it restored and why."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the rule goes back to an earlier version.")})
    revision = RuleRevision.objects.filter(rule=rule, version=version).first()
    if revision is None:
        raise ValidationError({"version": _("This rule has no version %(v)s.") % {"v": version}})
    if revision.version == rule.version:
        raise ValidationError({"version": _("Version %(v)s is the rule as it is now.") % {"v": version}})
    for field in ("name", "severity", "params", "active", "cooldown"):
        setattr(rule, field, getattr(revision, field))
    with transaction.atomic():
        rule_save(rule=rule, by=by, reason=_("Back to version %(v)s: %(reason)s") % {
            "v": version, "reason": reason.strip()})
        audit_record(user=by, action=Action.UPDATE, resource=f"Rule/{rule.pk} v{rule.version} rollback",
                     request=request)
    return rule


def program_save(*, program: Program, by: User, request: HttpRequest | None = None) -> Program:
    """Create or change a programme's own fields (name, condition, texts, measures)."""
    created = program.pk is None
    program.full_clean()
    program.save()
    audit_record(user=by, action=Action.CREATE if created else Action.UPDATE, resource=f"Program/{program.pk}",
                 request=request)
    return program


def episode_enrol(*, patient: Patient, program: Program, care_team: CareTeam, treatment_start: date, by: User,
                  request: HttpRequest | None = None) -> TreatmentEpisode:
    """Enrol ``patient`` in ``program`` under ``care_team`` from ``treatment_start`` (the index
    date): the episode, and the occurrences of the programme's schedules that can still be
    answered, in one transaction."""
    from patients.models import TreatmentEpisode
    from schedules.services import schedule_generate_occurrences

    if program.published_at is None:
        raise ValidationError(_("Publish the programme before enrolling patients."))
    if TreatmentEpisode.objects.filter(patient=patient, program=program, treatment_start=treatment_start).exists():
        raise ValidationError({"treatment_start": _("The patient is already enrolled from this date.")})
    with transaction.atomic():
        episode = TreatmentEpisode.objects.create(patient=patient, program=program, care_team=care_team,
                                                  condition_code=program.condition_code,
                                                  treatment_start=treatment_start)
        schedule_generate_occurrences(episode=episode)
        audit_record(user=by, action=Action.CREATE, resource=f"EpisodeOfCare/{episode.pk}", patient_id=patient.pk,
                     request=request)
    return episode


def program_publish(*, program: Program, by: User, request: HttpRequest | None = None) -> Program:
    """Publish a programme set up in the editor: from now on patients can be enrolled. It needs
    a questionnaire with a schedule or a measurement with a rule — a programme that asks and
    watches nothing would only look like follow-up."""
    from django.utils import timezone

    from schedules.models import Schedule

    if program.published_at is not None:
        return program
    asks = Schedule.objects.filter(program=program, active=True).exists()
    watches = Rule.objects.filter(program=program, active=True, safety_net_for="").exists()
    if not (asks or watches):
        raise ValidationError(_("Add a schedule or a rule before publishing: "
                                "the programme asks and watches nothing yet."))
    program.published_at = timezone.now()
    program.save(update_fields=["published_at"])
    audit_record(user=by, action=Action.UPDATE, resource=f"Program/{program.pk} published", request=request)
    return program
