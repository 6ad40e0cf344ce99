"""Request types for views that only run for a signed-in person (django-stubs' pattern): behind
``login_required`` or ``role_required`` ``request.user`` is a User, never AnonymousUser."""

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    user: User
