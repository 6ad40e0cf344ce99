"""The admin site, refusing signed-in users without admin rights with a 403 page.

Django's admin sends anyone it does not let in to its login page. Our ``admin/login/`` is a
redirect to the site's own login (for TOTP, proplatform.urls), which sends a signed-in user back
to ``next`` — the admin — which sends them to its login again: a nurse or a quality user who
opened /admin/ got an endless redirect. A signed-in user has nothing to gain from a login page
here, so they are refused instead; anonymous users still go to the login."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


class AdminSite(admin.AdminSite):
    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Callable[..., HttpResponse]:
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        return guarded


def admin_login(request: HttpRequest) -> HttpResponse:
    """``admin/login/``: the site's login (which asks for the TOTP code; the admin's own form
    would not), keeping ``next``. A signed-in user without admin rights is refused here too,
    rather than sent through the login back to the admin."""
    from django.contrib.admin import site

    if request.user.is_authenticated and not site.has_permission(request):
        raise PermissionDenied
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("login") + (f"?{query}" if query else ""))


class ProplatformAdminConfig(AdminConfig):
    default_site = "proplatform.admin_site.AdminSite"
