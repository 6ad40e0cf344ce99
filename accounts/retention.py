"""Removing what has outlived its use: expired sessions and person tokens (docs/operations.md,
"Retention"). Run by beat (``accounts.tasks.clear_expired``); each run catches up on everything
past its time, so a lost tick only delays the cleanup."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiToken


def sessions_and_tokens_clear_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Delete sessions past their expiry, and person tokens that expired or were revoked more than
    ``TOKEN_RETENTION_DAYS`` ago (kept that long so a token seen in a log can still be traced to
    its owner). Returns how many of each were deleted."""
    now = now or timezone.now()
    sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
    kept_until = now - timedelta(days=settings.TOKEN_RETENTION_DAYS)
    tokens, _ = ApiToken.objects.filter(Q(expires_at__lt=kept_until) | Q(revoked_at__lt=kept_until)).delete()
    return {"sessions": sessions, "tokens": tokens}
