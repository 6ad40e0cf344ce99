"""The response source of the inbox: run the response rules (and the instruments' safety nets) on
one completed answer, and tell open "missed" alerts when a late upload answered their miss."""

from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from alerts.evaluation.inbox import inbox_claim
from alerts.evaluation.models import Source
from alerts.live import alerts_broadcast
from alerts.models import Alert, AlertEvent, AlertFinding, EventKind, Rule, Status
from alerts.rules import kinds_for
from alerts.rules.context import Context
from alerts.safety import safety_rules_ensure
from alerts.services import (
    RANK,
    TZ,
    Evaluator,
    Pending,
    alerts_lock_patients,
    errors_record,
    findings_apply,
    rules_for,
)
from patients.access import episodes_in_care
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from questionnaires.review import response_colour_raise
from schedules.models import MissedOccurrence


def response_inbox_evaluate(*, inbox_id: int) -> int:
    """Claim one inbox row of answers and evaluate them, in one transaction: a worker killed
    half-way leaves the row for the next task or the sweep. Returns how many it evaluated."""
    with transaction.atomic():
        row = inbox_claim(inbox_id=inbox_id, source=Source.RESPONSE, now=timezone.now())
        if row is None:
            return 0
        evaluated = sum(response_evaluate(response_id=response_id) for response_id in row.object_ids)
        row.delete()
    return evaluated


def response_evaluate(*, response_id: int) -> int:
    """Run the response rules on one completed answer, once: ``evaluated_at`` records when, and a
    second call finds it set and does nothing. Returns 1 if it evaluated the answer, else 0."""
    kinds = kinds_for("response")
    now = timezone.now()
    with transaction.atomic():
        response = (
            QuestionnaireResponse.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("questionnaire")
            .filter(id=response_id, evaluated_at=None, status=ResponseStatus.COMPLETED)
            .first()
        )
        if response is None:
            return 0
        QuestionnaireResponse.objects.filter(id=response_id).update(evaluated_at=now)
        day = timezone.localdate(response.authored_at, TZ)
        # The instrument's safety net in each of the patient's programmes, created now if it is
        # missing (a programme set up before issue 19, a questionnaire answered outside its
        # programme's list): no red answer and no "contact me" reaches nobody.
        # The nets run in every programme whose episode a team still looks at on the day the
        # answer arrives — not started yet (a baseline), running, or in the grace period after it
        # ended — while the programme's own rules judge running episodes only.
        in_care = _programs_in_care(response.patient_id)
        safety_rules_ensure(program_ids=in_care, urls=[response.questionnaire.url])
        rules = rules_for(response.patient_id, day, kinds)
        seen = {r.pk for r in rules}
        rules += [r for r in Rule.objects.filter(program_id__in=in_care, kind="safety", active=True,
                                                 safety_net_for=response.questionnaire.url)
                  if r.pk not in seen]
        evaluator = Evaluator(Context(now=now), {response.patient_id}, {response.pk: rules})
        for rule in rules:
            evaluator.run(rule, response.patient_id, f"response:{response.pk}", "evaluate_response", response)
        findings_apply(_safety_stands_back(evaluator, response.patient_id), now=now)
        errors_record(evaluator.errors)
        _missed_answered_late(response, now)
        # The review queue sorts the response at least as high as the colour any open alert gave
        # this response's finding (a score or combination rule may judge red what the answer
        # colours alone call green). The finding's colour, not the alert's: an alert that is red
        # from earlier evidence does not make today's answers red.
        worst = None
        for severity in AlertFinding.objects.filter(source_key=f"response:{response.pk}").exclude(
                alert__status=Status.RESOLVED).values_list("severity", flat=True):
            if worst is None or RANK[severity] > RANK[worst]:
                worst = severity
        if worst is not None:
            response_colour_raise(response_id=response.pk, colour=worst)
    return 1


def _missed_answered_late(response: QuestionnaireResponse, now: datetime) -> None:
    """A late upload completed an occurrence whose miss the rules had already judged: every
    unresolved alert that holds that miss gets the answer as a finding of its own, and its
    reason (what the worklist shows) says so.

    The alert is left for the nurse to resolve rather than resolved here: she may already have
    acted on it (a call booked), a "missed N in a row" alert can rest on other misses that still
    stand, and a resolution records what a clinician judged — "No action needed" is one click.
    (Misses the rules had not judged yet were closed by schedules.services.occurrence_complete
    and raise nothing.)"""
    missed = list(MissedOccurrence.objects.filter(answered_late_by=response).select_related("occurrence"))
    if not missed:
        return
    by_key = {f"missed:{m.pk}": m for m in missed}
    found = (AlertFinding.objects.filter(source_key__in=by_key, alert__status__in=(Status.OPEN, Status.ACKNOWLEDGED))
             .select_related("alert"))
    alerts = {f.alert_id: (f.alert, by_key[f.source_key]) for f in found}
    if not alerts:
        return
    alerts_lock_patients({response.patient_id})
    source_key = f"late:{response.pk}"

    def shown(moment: datetime) -> str:
        return date_format(moment.astimezone(TZ), "DATETIME_FORMAT")

    for alert, miss in alerts.values():
        reason = gettext("The questionnaire due %(due)s was answered on %(authored)s, within its window, "
                         "but the answer arrived only on %(received)s.") % {
            "due": shown(miss.occurrence.due_at), "authored": shown(response.authored_at),
            "received": shown(response.received_at)}
        evidence = {"answered_late": True, "response_id": response.pk, "missed_id": miss.pk,
                    "occurrence_id": miss.occurrence_id, "due_at": miss.occurrence.due_at.isoformat(),
                    "authored_at": response.authored_at.isoformat(),
                    "received_at": response.received_at.isoformat()}
        _, created = AlertFinding.objects.get_or_create(
            rule_id=alert.rule_id, source_key=source_key,
            defaults={"alert": alert, "rule_version": alert.rule_version, "severity": alert.severity,
                      "reason": reason, "evidence": evidence, "found_at": now})
        if not created:
            continue
        Alert.objects.filter(pk=alert.pk).update(reason=reason, evidence=evidence, updated_at=now)
        AlertEvent.objects.create(alert=alert, kind=EventKind.EVIDENCE_ADDED, at=now,
                                  data={"sources": [source_key], "severity": alert.severity, "answered_late": True})
    ids = sorted(alerts)
    transaction.on_commit(lambda: alerts_broadcast(ids))


def _programs_in_care(patient_id: UUID) -> list[int]:
    """Programmes with an episode of the patient's that a care team can see today
    (patients.access.episodes_in_care)."""
    return list(episodes_in_care().filter(patient_id=patient_id).values_list("program_id", flat=True).distinct())


def _safety_stands_back(evaluator: Evaluator, patient_id: UUID) -> list[Pending]:
    """The findings, without an instrument safety net's finding that another rule of the same
    programme reports on the same response at least as red — one alert for the nurse, not two:
    an ``answer-severity`` rule asking about the same contact question covers it all; an
    ``answer`` rule on the contact question covers a finding that is only the contact request.

    Only where that other alert is sure to be seen: the other rule fired (so it is active) and
    keeps no cooldown (a cooled finding is filed on a resolved alert without telling anyone).
    Otherwise the safety net's finding stays, even if that makes two."""
    others = [p for p in evaluator.pending if p.rule.kind in ("answer-severity", "answer") and not p.rule.cooldown]
    if not others:
        return evaluator.pending

    def covered(net: Pending) -> bool:
        contact = evaluator.params(net.rule, patient_id).contact_link_id
        only_contact = all(a["link_id"] == contact for a in net.finding.evidence.get("answers", []))
        for other in others:
            if (other.rule.program_id, other.source_key) != (net.rule.program_id, net.source_key) \
                    or RANK[other.severity] < RANK[net.severity]:
                continue
            params = evaluator.params(other.rule, patient_id)
            if other.rule.kind == "answer-severity" and params.contact_link_id == contact:
                return True
            if other.rule.kind == "answer" and only_contact and params.link_id == contact:
                return True
        return False

    return [p for p in evaluator.pending if p.rule.kind != "safety" or not covered(p)]
