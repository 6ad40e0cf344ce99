"""The missed-questionnaire source of the inbox: run the "missed" rules on a miss once their grace
periods have passed.

schedules records a miss (MissedOccurrence) and puts it in the inbox with ``not_before`` at the
occurrence's deadline; the sweep hands it to a task once that time has passed. Each rule waits
for its own ``grace_hours`` after the deadline: a rule whose grace has passed runs, and while
another rule's grace is still running the inbox row stays, its ``not_before`` moved to the next
rule's end of grace. A rule that ran on an earlier look running again is harmless: a finding
already recorded for (rule, "missed:<id>") adds nothing."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from alerts.evaluation.inbox import inbox_claim
from alerts.evaluation.models import PendingEvaluation, Source
from alerts.models import Rule, RuleError
from alerts.rules import kinds_for
from alerts.rules.context import Context
from alerts.services import TZ, Evaluator, errors_record, findings_apply, rules_for
from schedules.models import MissedOccurrence


def missed_evaluate(*, now: datetime | None = None, batch: int = 200) -> int:
    """Evaluate every miss in the inbox that is due at ``now`` (default: now). Returns how many
    misses it finished with. The sweep's tasks do the same a row at a time (missed_inbox_evaluate)."""
    now = now or timezone.now()
    done, after = 0, 0
    while True:
        # Keyset pages by id: a row skipped because another worker holds it is not asked for again.
        ids = list(PendingEvaluation.objects.filter(source=Source.MISSED, not_before__lte=now, id__gt=after)
                   .order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return done
        after = ids[-1]
        done += sum(missed_inbox_evaluate(inbox_id=inbox_id, now=now) for inbox_id in ids)


def missed_inbox_evaluate(*, inbox_id: int, now: datetime) -> int:
    """Claim one due inbox row of misses and run the rules whose grace has passed. The row is
    deleted once every rule has run, or moved on to the next rule's end of grace. Returns how
    many misses it finished with."""
    kinds = kinds_for("missed")
    with transaction.atomic():
        row = inbox_claim(inbox_id=inbox_id, source=Source.MISSED, now=now)
        if row is None:
            return 0
        done, later = 0, []
        for missed_id in row.object_ids:
            outcome = _missed_evaluate_one(missed_id, kinds, now)
            done += outcome.done
            if outcome.wait_until is not None:
                later.append(outcome.wait_until)
        if later:
            PendingEvaluation.objects.filter(pk=row.pk).update(not_before=min(later))
        else:
            row.delete()
    return done


@dataclass(frozen=True, slots=True)
class _Outcome:
    done: int  # 1: every rule has run and the miss is processed
    wait_until: datetime | None  # the next rule's end of grace, while one is still running


def _missed_grace(evaluator: Evaluator, rule: Rule, patient_id: UUID) -> timedelta:
    try:
        return timedelta(hours=float(evaluator.params(rule, patient_id).grace_hours))
    except Exception:  # noqa: BLE001 - invalid params: evaluator.run records the error now
        return timedelta(0)


def _missed_evaluate_one(missed_id: int, kinds: list[str], now: datetime) -> _Outcome:
    # Locked, not skipped: the only other writer is a late answer closing the miss
    # (schedules.services.occurrence_complete), and its transaction may still roll back.
    missed = (
        MissedOccurrence.objects.select_for_update(of=("self",))
        .select_related("occurrence", "occurrence__questionnaire")
        .filter(pk=missed_id, processed_at=None)
        .first()
    )
    if missed is None:
        return _Outcome(0, None)  # answered late before the rules looked, or gone with its patient
    occurrence = missed.occurrence
    patient_id = occurrence.patient_id
    rules = rules_for(patient_id, occurrence.due_at.astimezone(TZ).date(), kinds)
    evaluator = Evaluator(Context(now=now), {patient_id}, {missed.pk: rules})
    source_key = f"missed:{missed.pk}"
    waiting: list[datetime] = []
    for rule in rules:
        ends = occurrence.closes_at + _missed_grace(evaluator, rule, patient_id)
        if ends > now:
            waiting.append(ends)
            continue
        evaluator.run(rule, patient_id, source_key, "evaluate_missed", missed)
    done = 0
    if not waiting:
        done = MissedOccurrence.objects.filter(pk=missed.pk, processed_at=None).update(processed_at=now)
    findings_apply(evaluator.pending, now=now)
    # A rule re-run while the row waits for a longer grace would record the same error again.
    known = set(RuleError.objects.filter(source_key=source_key).values_list("rule_id", flat=True))
    errors_record([e for e in evaluator.errors if e.rule_id not in known])
    return _Outcome(done, min(waiting) if waiting else None)
