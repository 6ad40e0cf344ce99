"""Channels that tell a clinician about an alert, found by their module (the pattern of
schedules/transports/): adding SMS or a pager = one module in this package exposing ``NAME`` and
``send(*, notice)``; nothing else changes.

``send`` raises TransportError (or anything else) when the message did not go out; the caller
(alerts.escalation) records the attempt as a failed Notification with the error and retries it on a
later run."""

from dataclasses import dataclass
from functools import cache
from types import ModuleType

from django.conf import settings

from accounts.models import User
from proplatform.plugins import module_get, modules_by_name


class TransportError(Exception):
    """The channel could not deliver; the message says why, in words an operator can act on."""


@dataclass(frozen=True, slots=True)
class Notice:
    """What a transport may say about an alert. Deliberately no patient: the recipient may not be
    on the patient's team, and e-mail is not a secure channel, so a notice names the team and
    links to the triage page, where access rules and the audit trail apply."""

    alert_id: int | None
    recipient: User
    reason: str  # the Notification's reason, e.g. "escalation-1"
    level: int  # step on the escalation ladder: 1 on-call, 2 team lead
    team: str  # the care team(s) whose escalation policy named the recipient
    link: str  # absolute URL of the triage page (of the review list for an overdue review)
    # "alert": a red alert nobody acknowledged; "review": a response whose review is overdue
    # (alerts.review_escalation), then ``response_id`` instead of ``alert_id``.
    about: str = "alert"
    response_id: int | None = None


@cache
def transports() -> dict[str, ModuleType]:
    return modules_by_name(__name__, __path__)


def transport_get(channel: str) -> ModuleType:
    return module_get(transports(), channel, "alert channel")


def channels_enabled() -> list[str]:
    """The channels escalations go through: the live page first (instant, but only if the person
    has it open), e-mail as the one that reaches someone who has not."""
    return list(getattr(settings, "ALERT_NOTIFY_CHANNELS", ["websocket", "email"]))
