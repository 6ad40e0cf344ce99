"""Each instrument's safety net (issue 19): one ``safety`` rule per programme and instrument.

So that no red answer and no "contact me" reaches nobody, the rule is

- created when a questionnaire joins a programme (``Program.questionnaires``: the admin, the demo
  command, any ``.add``/``.set``; connected in alerts.apps) and by ``load_instruments``;
- created again at evaluation if it is missing (alerts.services.response_evaluate), for every
  programme in which the patient has a running episode;
- switched off only by an administrator or a team lead, with a reason, through rule_save (a
  RuleRevision says who and why) and an audit row. A switched-off rule exists, so it is never
  created again: it stays off until someone switches it on.
"""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import Role, User
from alerts.definitions import rule_save
from alerts.models import EscalationPolicy, Rule, Severity
from audit.models import Action
from audit.services import audit_record
from patients.models import CareTeam, Program
from questionnaires.models import Questionnaire

KIND = "safety"


def _name(url: str) -> str:
    questionnaire = Questionnaire.objects.filter(url=url).order_by("-created_at").only("title").first()
    title = questionnaire.title if questionnaire and questionnaire.title else url.rsplit("/", 1)[-1]
    # Rule names are shown to the Danish care teams as stored.
    with translation.override("da"):
        return _("Safety net: %(title)s") % {"title": title}


def safety_rules_ensure(*, program_ids: Iterable[Any], urls: Iterable[str]) -> list[Rule]:
    """Create the safety rule of every (programme, instrument url) pair that has none yet, active.
    Returns the rules created. An existing rule — active or switched off — is left as it is.

    Safe to call concurrently: the unique constraint on (program, safety_net_for) lets one
    creator win; the other's savepoint rolls back and it moves on."""
    program_ids, urls = set(program_ids), set(urls)
    if not program_ids or not urls:
        return []
    have = set(Rule.objects.filter(program_id__in=program_ids, safety_net_for__in=urls)
               .values_list("program_id", "safety_net_for"))
    created = []
    for program_id in sorted(program_ids):
        for url in sorted(urls):
            if (program_id, url) in have:
                continue
            rule = Rule(program_id=program_id, kind=KIND, name=_name(url), severity=Severity.RED,
                        params={"questionnaire": url}, safety_net_for=url)
            try:
                with transaction.atomic():
                    rule_save(rule=rule, by=None, reason="safety net of the instrument (issue 19)")
            except IntegrityError:
                continue  # created by someone else meanwhile
            created.append(rule)
    return created


def safety_rules_ensure_for_questionnaires(*, program_ids: Iterable[Any], questionnaire_ids: Iterable[Any]) -> None:
    urls = Questionnaire.objects.filter(pk__in=list(questionnaire_ids)).values_list("url", flat=True)
    safety_rules_ensure(program_ids=program_ids, urls=set(urls))


def may_switch_safety_nets(user: User, program: Program) -> bool:
    """Administrators, and a team lead (escalation policy) who leads every team with patients in
    ``program``: a net switched off reaches every team's patients, so one team's lead cannot
    decide it for another team."""
    if user.role == Role.ADMIN:
        return True
    teams = set(CareTeam.objects.filter(episodes__program=program).values_list("pk", flat=True))
    led = set(EscalationPolicy.objects.filter(lead=user, care_team__in=teams).values_list("care_team_id", flat=True))
    return bool(teams) and teams == led


def safety_rule_switch(*, rule: Rule, active: bool, reason: str, by: User,
                       request: HttpRequest | None = None) -> Rule:
    """Switch a programme's safety net for one instrument off (a reason is required) or on again."""
    if not rule.is_safety_net:
        raise ValidationError({"rule": _("Only an instrument's safety net is switched on and off here.")})
    if not may_switch_safety_nets(by, rule.program):
        raise PermissionDenied
    reason = reason.strip()
    if not active and not reason:
        raise ValidationError({"reason": _("Say why this programme does not need the safety net.")})
    with transaction.atomic():
        rule = Rule.objects.select_for_update().get(pk=rule.pk)
        if rule.active == active:
            return rule
        rule.active = active
        rule_save(rule=rule, by=by, reason=reason or _("Switched on again."))
        audit_record(user=by, action=Action.UPDATE,
                     resource=f"Rule/{rule.pk} safety net {'on' if active else 'off'}", request=request)
    return rule
