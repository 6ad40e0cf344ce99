"""Beat removes what has outlived its use (docs/operations.md, "Retention")."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import ApiToken
from accounts.retention import sessions_and_tokens_clear_expired
from accounts.tasks import clear_expired

pytestmark = pytest.mark.django_db


def _session(expires_in: timedelta) -> str:
    store = SessionStore()
    store["x"] = 1
    store.create()
    assert store.session_key is not None
    Session.objects.filter(pk=store.session_key).update(expire_date=timezone.now() + expires_in)
    return store.session_key


def test_expired_sessions_are_deleted_and_live_ones_kept(cast):
    old, live = _session(-timedelta(seconds=1)), _session(timedelta(hours=1))
    assert clear_expired()["sessions"] == 1
    assert list(Session.objects.values_list("pk", flat=True)) == [live]
    assert old != live


def test_tokens_are_kept_for_the_retention_period_after_they_expire_or_are_revoked_and_then_deleted(cast):
    now = timezone.now()
    keep = timedelta(days=settings.TOKEN_RETENTION_DAYS)
    live, _ = ApiToken.issue(cast.clinician_a)
    recently_expired, _ = ApiToken.issue(cast.clinician_a)
    long_expired, _ = ApiToken.issue(cast.clinician_a)
    long_revoked, _ = ApiToken.issue(cast.clinician_b)
    ApiToken.objects.filter(pk=recently_expired.pk).update(expires_at=now - keep + timedelta(hours=1))
    ApiToken.objects.filter(pk=long_expired.pk).update(expires_at=now - keep - timedelta(seconds=1))
    ApiToken.objects.filter(pk=long_revoked.pk).update(revoked_at=now - keep - timedelta(seconds=1))
    assert sessions_and_tokens_clear_expired(now=now)["tokens"] == 2
    assert set(ApiToken.objects.values_list("pk", flat=True)) == {live.pk, recently_expired.pk}


def test_the_cleanup_runs_on_beat():
    assert settings.CELERY_BEAT_SCHEDULE["accounts-clear-expired"]["task"] == "accounts.tasks.clear_expired"
