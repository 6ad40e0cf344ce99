from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse

from accounts.http import AuthenticatedHttpRequest
from audit.models import Action, Outcome
from audit.services import audit_record

View = Callable[..., HttpResponse]


def role_required(*roles: str) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.role not in roles:
                # A refusal is audited like any other (who tried to open what, as which role).
                audit_record(user=request.user, action=Action.READ if request.method in ("GET", "HEAD") else
                             Action.UPDATE, resource=request.path[:300], outcome=Outcome.DENIED,
                             patient_id=kwargs.get("patient_id"), request=request)
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
