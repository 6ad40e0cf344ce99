"""The admin site, refusing signed-in users without admin rights with a 403 page.

Django's admin sends anyone it does not let in to its login page. Our ``admin/login/`` is a
redirect to the site's own login (for TOTP, proplatform.urls), which sends a signed-in user back
to ``next`` — the admin — which sends them to its login again: a nurse or a quality user who
opened /admin/ got an endless redirect. A signed-in user has nothing to gain from a login page
here, so they are refused instead; anonymous users still go to the login."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class AdminSite(admin.AdminSite):
    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        # The admin's contract (as Django's own admin_view): the wrapper takes and answers what
        # the view does, which wraps() copies; a TypeVar cannot say "the same signature" here.
        return cast(_View, guarded)


def admin_login(request: HttpRequest) -> HttpResponse:
    """``admin/login/``: the site's login (which asks for the TOTP code; the admin's own form
    would not), keeping ``next``. A signed-in user without admin rights is refused here too,
    rather than sent through the login back to the admin."""
    from django.contrib.admin import site

    if request.user.is_authenticated and not site.has_permission(request):
        raise PermissionDenied
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("login") + (f"?{query}" if query else ""))


def admin_names_translate(site: admin.AdminSite) -> None:
    """Every model the admin shows — ours and the libraries' (axes, django-otp) — with its name
    and its fields' names through gettext, so the Danish catalogue names them (issue 24: "Kind",
    "Params", "Escalation policys" in a Danish admin). Names given explicitly with gettext_lazy
    are left alone; the others are the English that Django derives from the attribute name
    ("received at"), wrapped as they are, and translated in locale/da.

    Why here and not as ``verbose_name=`` on each field: the migration autodetector reads a
    field's *original* ``verbose_name`` (``Field._verbose_name``) and a model's original Meta
    options, so naming them here changes no migration of any app, and the models stay as their
    owners wrote them. tests/test_admin_names.py checks that every name has a Danish entry."""
    from django.utils import translation
    from django.utils.functional import Promise
    from django.utils.translation import gettext_lazy

    for model in site._registry:
        meta = model._meta
        for attr in ("verbose_name", "verbose_name_plural"):
            name = getattr(meta, attr)
            # Not given in Meta: derived in English (the plural lazily, as "<name>s").
            if not isinstance(name, Promise) or attr not in meta.original_attrs:
                with translation.override(None):
                    setattr(meta, attr, gettext_lazy(str(name)))
        for field in meta.get_fields():
            name = getattr(field, "verbose_name", None)
            if isinstance(name, str) and not isinstance(name, Promise):
                setattr(field, "verbose_name", gettext_lazy(name))  # noqa: B010 - a relation has none


class ProplatformAdminConfig(AdminConfig):
    default_site = "proplatform.admin_site.AdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscover: every app's admin is registered now
        admin_names_translate(admin.site)
