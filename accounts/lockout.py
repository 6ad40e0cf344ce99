"""Failed-login lockout (django-axes) as our views need it: the client address axes counts, and
how long a locked username still has to wait.

Axes counts failures per username (settings.AXES_LOCKOUT_PARAMETERS) in its database table,
which both shapes have (SQLite embedded, PostgreSQL), so every web process sees the same count.
"""

import math

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from audit.services import client_ip


def axes_client_ip(request: HttpRequest) -> str | None:
    """settings.AXES_CLIENT_IP_CALLABLE: the address the audit and the throttles use."""
    return client_ip(request)


def lockout_retry_after(username: str) -> int:
    """Whole seconds until ``username``'s lock lifts by itself (at least 1)."""
    cool_off = get_cool_off()
    last = AccessAttempt.objects.filter(username=username).aggregate(last=Max("attempt_time"))["last"]
    if cool_off is None or last is None:
        return int(cool_off.total_seconds()) if cool_off else 60
    seconds: float = (last + cool_off - timezone.now()).total_seconds()
    return max(1, math.ceil(seconds))


def is_locked_out(request: HttpRequest) -> bool:
    """Whether the authenticate() call just made on ``request`` was refused, or ended, by a lock."""
    return bool(getattr(request, "axes_locked_out", False))
