"""Session idle timeout, and two-factor login required for staff.

Runs after django-otp's middleware (which sets ``request.user.is_verified``). A request without a
session cookie — a device's reading, a program with a bearer token — returns at once, before the
session is even loaded: this path costs the readings hot path one dict look-up. Bearer tokens
need no check here: a staff member gets one only with the code (accounts.api)."""

import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from proplatform.middleware import current_request_id

LAST_SEEN_KEY = "last_seen"
_EXPIRY_KEY = "_session_expiry"  # where SessionBase.set_expiry keeps a fixed expiry
# The session is written at most this often just to move its "last seen" on: a write per
# request would be a database write per page view and per live-feed poll.
_TOUCH_EVERY_SECONDS = 60
# What an unverified staff session may still open: the way to log in, out and enrol.
_OPEN_PREFIXES = ("/login/", "/logout/", "/account/two-factor/", "/i18n/", "/static/", "/health/")
_API_PREFIXES = ("/api/", "/fhir")


class SessionSecurityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        if not request.user.is_authenticated:
            return self.get_response(request)
        if self._idle_expired(request):
            logout(request)  # flushes the session; the request goes on as anonymous
            if request.path.startswith(_API_PREFIXES):
                return self.get_response(request)  # DRF answers 401/403 as for any anonymous call
            return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
        refused = self._two_factor_missing(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    @staticmethod
    def _idle_expired(request: HttpRequest) -> bool:
        now = int(time.time())
        last_seen = request.session.get(LAST_SEEN_KEY)
        if isinstance(last_seen, int) and now - last_seen > settings.SESSION_IDLE_TIMEOUT_SECONDS:
            return True
        if not isinstance(last_seen, int) or now - last_seen >= _TOUCH_EVERY_SECONDS:
            request.session[LAST_SEEN_KEY] = now
            if _EXPIRY_KEY not in request.session:
                # Django moves a session's expiry on by SESSION_COOKIE_AGE whenever it saves it, so
                # saving "last seen" would make the 8 h limit slide; a fixed date keeps it absolute.
                request.session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))
        return False

    @staticmethod
    def _two_factor_missing(request: HttpRequest) -> HttpResponse | None:
        user = request.user
        # __call__ has returned already for an anonymous visitor; the isinstance is for mypy.
        if not (settings.REQUIRE_STAFF_TWO_FACTOR and isinstance(user, User) and user.is_staff_role
                and not user.is_verified()):
            return None
        if request.path.startswith(_OPEN_PREFIXES):
            return None
        if request.path.startswith(_API_PREFIXES):
            return JsonResponse({"detail": _("Two-factor login is required for staff. Log in with your code, "
                                             "or set up two-factor login at /account/two-factor/."),
                                 "request_id": current_request_id()}, status=403)
        return HttpResponseRedirect(f"{reverse('two-factor')}?{urlencode({'next': request.get_full_path()})}")


def session_idle_expired(session: SessionBase | None) -> bool:
    """For the live feed's websocket, which bypasses the HTTP middleware: whether the session has
    been unused longer than SESSION_IDLE_TIMEOUT_SECONDS (a ward PC left logged in), by the same
    rule as the pages. It only reads: the pages keep "last seen" up to date."""
    last_seen = session.get(LAST_SEEN_KEY) if session is not None else None
    return isinstance(last_seen, int) and int(time.time()) - last_seen > settings.SESSION_IDLE_TIMEOUT_SECONDS


def session_passed_two_factor(user: User, session: SessionBase | None) -> bool:
    """For connections that bypass the HTTP middleware (the live feed's websocket): whether
    this staff session may be used, by the same rule as above. Runs database queries: call it
    from synchronous code."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.models import Device

    if not (settings.REQUIRE_STAFF_TWO_FACTOR and user.is_staff_role):
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed
