"""Escalation of overdue reviews: a response nobody marked as reviewed by its ``review_due_at``
(questionnaires.review) climbs the same ladder as a red alert nobody acknowledged
(alerts.escalation), through the same transports, recorded the same way.

- Step 1 when the review is ``after`` overdue (the shortest ``after`` of the patient's teams'
  EscalationPolicy, as for alerts): the teams' on-call; step 2 after twice that: the leads. The
  clock starts at the due time — the end of the promised working day — not at submission: the
  promise, not the answer, is what is late.
- A step is claimed by inserting its ReviewEscalation row under the unique (response, level):
  a second beat run at the same moment inserts nothing and notifies nobody. The ladder's
  position is read from those rows, so a restart loses no step.
- Reviewing the response stops the ladder, and failed notices of a reviewed response are not
  retried.
- Only reviews overdue by less than ``REVIEW_ESCALATE_WITHIN`` (7 days) climb. A response that
  was already weeks overdue when the queue was introduced (migration
  alerts.0005_existing_responses_review) is on the list and counted as overdue on the worklist,
  but paging the on-call tonight about last month's answers helps nobody; the team works
  through them from the list.
- Notices name the team and link to the review list, never the patient (alerts.transports).
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from alerts.escalation import (
    LADDER_STEPS,
    Escalated,
    _claim,
    _deliver,
    _max_attempts,
    _policies_by_patient,
    _recipients,
    _retry_after,
    _team_label,
    _user_model,
)
from alerts.models import DeliveryStatus, Notification, ReviewEscalation
from alerts.transports import Notice, channels_enabled
from questionnaires.models import QuestionnaireResponse, ResponseStatus

REASON_PREFIX = "review-escalation-"
REVIEW_ESCALATE_WITHIN = timedelta(days=7)


def _review_link() -> str:
    base = str(getattr(settings, "ALERT_LINK_BASE_URL", "")).rstrip("/")
    return f"{base}{reverse('review-queue')}"


def _overdue(now: datetime) -> Iterator[QuestionnaireResponse]:
    return (QuestionnaireResponse.objects
            .filter(status=ResponseStatus.COMPLETED, review__isnull=True,
                    review_due_at__lt=now, review_due_at__gte=now - REVIEW_ESCALATE_WITHIN)
            .only("pk", "patient_id", "review_due_at")  # not the answers: the ladder needs none
            .annotate(level=Max("review_escalations__level"))
            .order_by("review_due_at", "pk")
            .iterator(chunk_size=500))


def reviews_escalate(*, now: datetime | None = None) -> Escalated:
    """Climb every due step of every overdue review, notify, retry failed notices. Idempotent:
    twice at the same ``now`` does nothing the second time."""
    now = now or timezone.now()
    result = Escalated()
    # level: the Max(...) _overdue annotates (the highest step climbed, None before the first)
    candidates = [r for r in _overdue(now) if (r.level or 0) < LADDER_STEPS]  # type: ignore[attr-defined]
    if candidates:
        _climb(candidates, now, result)
    _retry_failed(now, result)
    return result


def _claim_step(response_id: int, level: int, now: datetime, recipients: list[Any], teams: list[int]) -> bool:
    try:
        with transaction.atomic():
            ReviewEscalation.objects.create(response_id=response_id, level=level, at=now,
                                            recipients=[u.pk for u in recipients], teams=teams)
        return True
    except IntegrityError:
        return False  # another run recorded this step


def _notice(response_id: int, user: User, level: int, team: str, link: str) -> Notice:
    return Notice(alert_id=None, response_id=response_id, about="review", recipient=user,
                  reason=f"{REASON_PREFIX}{level}", level=level, team=team, link=link)


def _climb(candidates: list[QuestionnaireResponse], now: datetime, result: Escalated) -> None:
    policies = _policies_by_patient({r.patient_id for r in candidates})
    link = _review_link()
    for response in candidates:
        mine = policies.get(response.patient_id, [])
        if not mine:
            continue  # no policy on any of the patient's teams: shown on the triage page
        after = min(p.after for p in mine)
        assert response.review_due_at is not None
        due = min(LADDER_STEPS, int((now - response.review_due_at) // after))
        current = response.level or 0  # type: ignore[attr-defined]  # annotated by _overdue
        claimed: list[tuple[Notification, Notice]] = []
        for level in range(current + 1, due + 1):
            recipients = _recipients(mine, level)
            if not _claim_step(response.pk, level, now, recipients, [p.care_team_id for p in mine]):
                continue
            result.steps += 1
            for user in recipients:
                for channel in channels_enabled():
                    notice = _notice(response.pk, user, level, _team_label(mine, user, level), link)
                    notification = _claim(channel, user, notice.reason, now, response_id=response.pk)
                    if notification is not None:
                        claimed.append((notification, notice))
        # The steps are committed: transports are slow I/O, outside any transaction.
        for notification, notice in claimed:
            _deliver(notification, notice, result)


def _retry_failed(now: datetime, result: Escalated) -> None:
    """Failed notices about a review still not done, as alerts.escalation retries its own."""
    groups = list(
        Notification.objects.filter(status=DeliveryStatus.FAILED, response__isnull=False,
                                    response__review__isnull=True, reason__startswith=REASON_PREFIX)
        .values("response_id", "channel", "recipient_id", "reason")
        .annotate(failures=Count("id"), last=Max("attempted_at"))
        .filter(failures__lt=_max_attempts(), last__lte=now - _retry_after())
        .order_by("response_id", "recipient_id", "channel")
    )
    if not groups:
        return
    patients = dict(QuestionnaireResponse.objects.filter(pk__in={g["response_id"] for g in groups})
                    .values_list("pk", "patient_id"))
    policies = _policies_by_patient(set(patients.values()))
    users = {u.pk: u for u in _user_model().objects.filter(pk__in={g["recipient_id"] for g in groups})}
    link = _review_link()
    for group in groups:
        user = users[group["recipient_id"]]
        if not user.is_active:
            continue
        level = int(group["reason"].removeprefix(REASON_PREFIX) or 0)
        team = _team_label(policies.get(patients[group["response_id"]], []), user, level)
        notification = _claim(group["channel"], user, group["reason"], now, response_id=group["response_id"])
        if notification is None:
            continue
        result.retried += 1
        _deliver(notification, _notice(group["response_id"], user, level, team, link), result)
