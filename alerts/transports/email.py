"""Escalation notices by e-mail through Django's mail backend.

E-mail is not a secure channel: the message names no patient, CPR number, diagnosis, reading or
answer — only that a red alert of a team waits, and a link to the triage page, where the
recipient logs in and access rules and the audit trail apply."""

from django.conf import settings
from django.core.mail import send_mail
from django.utils.translation import gettext as _

from alerts.transports import Notice, TransportError

NAME = "email"


def send(*, notice: Notice) -> None:
    address = notice.recipient.email
    if not address:
        raise TransportError("The recipient has no e-mail address.")
    if notice.about == "review":
        subject = _("Answers wait for review past the promised time")
        body = _(
            "Answers from a patient of %(team)s have waited longer than the programme promises "
            "for a nurse to review them.\n\nOpen the review list to see them: %(link)s\n"
        ) % {"team": notice.team, "link": notice.link}
    else:
        subject = _("A red alert waits for acknowledgement")
        body = _(
            "A red alert for a patient of %(team)s waits for acknowledgement.\n\n"
            "Open the triage page to see it: %(link)s\n"
        ) % {"team": notice.team, "link": notice.link}
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
