"""Who a system client is while it calls: ``request.user`` for a backend-services token."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from typing_extensions import TypeIs

from smart.scopes import Scope, scopes_allow

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request

    from accounts.models import User
    from smart.models import SystemClient

SYSTEM_ROLE = "system"


@dataclass
class SystemPrincipal:
    """Stands in for ``request.user`` when a system client calls, as DevicePrincipal does for a
    device: it is no User, and the audit names it ``system:<client_id>`` with role ``system``."""

    client: "SystemClient"
    scopes: list[Scope] = field(default_factory=list)
    is_authenticated: bool = True
    role: str = SYSTEM_ROLE

    @property
    def is_active(self) -> bool:
        return self.client.active

    @property
    def identified_allowed(self) -> bool:
        return self.client.identified_allowed

    def get_username(self) -> str:
        return self.client.actor

    def may(self, resource_type: str, letters: str) -> bool:
        """Whether the token's scopes give ``letters`` (of cruds) on ``resource_type``. Whether
        identified patient data may be shown is the client's ``identified_allowed``, checked
        apart (smart.permissions, exports.selectors)."""
        return scopes_allow(self.scopes, resource_type, letters)


def is_system(user: object) -> TypeIs[SystemPrincipal]:
    return isinstance(user, SystemPrincipal)


def principal(request: "HttpRequest | Request") -> "User | SystemPrincipal":
    """Who calls a view that authentication and permissions have let through: a person or a
    system client. A device's principal (monitoring.authentication) reaches only the views that
    name it, and they check for it with isinstance before anything else."""
    return cast("User | SystemPrincipal", request.user)
