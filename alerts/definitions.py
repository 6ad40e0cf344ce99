"""Rule definitions as data: saving a rule keeps its previous definition as a revision, and
per-patient overrides are added, never edited. Parameters are validated by the kind's typed
model before anything is stored, so an invalid rule never reaches the evaluator."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from alerts.models import Rule, RuleOverride, RuleRevision
from alerts.rules import merged_params, parse_params, parse_params_for_save
from audit.models import Action
from audit.services import audit_record
from patients.models import Patient

_DEFINITION = ("kind", "name", "severity", "params", "active", "cooldown")


def _revision(rule: Rule, *, by: User | None, reason: str) -> RuleRevision:
    return RuleRevision.objects.create(
        rule=rule, version=rule.version, changed_by=by, reason=reason,
        **{f: getattr(rule, f) for f in _DEFINITION},
    )


def rule_save(*, rule: Rule, by: User | None, reason: str = "") -> Rule:
    """Create or change a rule. A change to its definition bumps ``version`` (alerts keep the
    version that raised them) and records the new definition as a RuleRevision with who and why."""
    parsed = parse_params_for_save(rule.kind, rule.params)
    if (rule.kind == "safety") != bool(rule.safety_net_for) or (
            # a safety rule's Params name its questionnaire; parsed is typed as their base model
            rule.kind == "safety" and parsed.questionnaire != rule.safety_net_for):  # type: ignore[attr-defined]
        # The safety net is the platform's (alerts.safety), one per programme and instrument.
        raise ValidationError({"kind": _("An instrument's safety net is created by the platform, not by hand.")})
    if rule.cooldown < timedelta(0):
        raise ValidationError({"cooldown": _("The cooldown cannot be negative.")})
    with transaction.atomic():
        if rule.pk is None:
            rule.version = 1
            rule.save()
            _revision(rule, by=by, reason=reason)
            return rule
        before = Rule.objects.select_for_update().get(pk=rule.pk)
        if all(getattr(before, f) == getattr(rule, f) for f in _DEFINITION) and before.program_id == rule.program_id:
            return rule
        rule.version = before.version + 1
        rule.save()
        _revision(rule, by=by, reason=reason)
    return rule


def rule_override_set(*, rule: Rule, patient: Patient, params: dict[str, Any] | None, by: User, reason: str,
                      request: HttpRequest | None = None) -> RuleOverride | None:
    """Give one patient their own parameters for ``rule`` (e.g. a higher weight limit), or with
    ``params=None`` go back to the rule's. The merged parameters must validate; the previous
    override is ended, not changed."""
    if rule.safety_net_for:
        # Nothing in it is a limit; an override could only switch it off for one patient unseen.
        raise ValidationError({"params": _("An instrument's safety net has no per-patient limits.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Say why this patient needs other limits.")})
    if params is not None:
        if not isinstance(params, dict) or not params:
            raise ValidationError({"params": _("Give the parameters to change, e.g. {\"high\": 95}.")})
        unknown = set(params) - set(rule.params) - set(type(parse_params(rule.kind, rule.params)).model_fields)
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValidationError({"params": _("Unknown parameters: %(names)s.") % {"names": names}})
        parse_params_for_save(rule.kind, merged_params(rule.params, params))
    now = timezone.now()
    with transaction.atomic():
        RuleOverride.objects.filter(rule=rule, patient=patient, ended_at=None).update(ended_at=now, ended_by=by)
        override = None
        if params is not None:
            override = RuleOverride.objects.create(rule=rule, patient=patient, params=params, reason=reason,
                                                   created_by=by, created_at=now)
        audit_record(user=by, action=Action.UPDATE, resource=f"Rule/{rule.pk} override", patient_id=patient.pk,
                     request=request)
    return override
