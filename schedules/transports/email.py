"""Reminders by e-mail through Django's mail backend.

E-mail is not a secure channel: the message names no questionnaire, diagnosis or answer —
only that something is waiting and until when."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from schedules.transports import TransportError

if TYPE_CHECKING:
    from schedules.models import Occurrence

NAME = "email"


def send(*, occurrence: "Occurrence", kind: str) -> None:
    user = occurrence.patient.user
    address = user.email if user is not None else ""
    if not address:
        raise TransportError("The patient has no e-mail address.")
    deadline = formats.date_format(timezone.localtime(occurrence.closes_at), "DATETIME_FORMAT")
    subject = _("A questionnaire is waiting for your answers")
    body = _(
        "You have a questionnaire to answer before %(deadline)s.\n\n"
        "Log in to proplatform; the questionnaire is on the front page, \"My page\".\n"
    ) % {"deadline": deadline}
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
