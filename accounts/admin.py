from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from accounts.models import ApiToken, User
from audit.models import Action
from audit.services import audit_record


@admin.register(User)
class ProUserAdmin(UserAdmin[User]):
    list_display = ("username", "first_name", "last_name", "role", "is_active")
    list_filter = ("role", "is_active")
    # the stubs type ModelAdmin.fieldsets as optional; UserAdmin's is a tuple
    fieldsets = UserAdmin.fieldsets + (("Role", {"fields": ("role",)}),)  # type: ignore[operator]
    add_fieldsets = UserAdmin.add_fieldsets + (("Role", {"fields": ("role",)}),)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Person tokens: listed and revoked here (the token itself is never stored, only its hash)."""

    list_display = ("id", "user", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username",)
    list_select_related = ("user",)
    readonly_fields = ("user", "key_hash", "created_at", "expires_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are issued by POST /api/v1/auth/token, to the person who logs in

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # revoke instead: the row says when a token was ended

    @admin.action(description=_l("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        ids = list(queryset.filter(revoked_at=None).values_list("id", flat=True))
        ApiToken.objects.filter(id__in=ids).update(revoked_at=timezone.now())
        for token_id in ids:
            audit_record(user=request.user, action=Action.UPDATE, resource=f"api-token {token_id} revoked (admin)",
                         request=request)
        messages.success(request, _("Tokens revoked: %(n)s.") % {"n": len(ids)})
