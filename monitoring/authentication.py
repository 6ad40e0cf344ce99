from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.authentication import bearer_token
from accounts.models import hash_token
from monitoring.models import Device, DeviceToken


@dataclass
class DevicePrincipal:
    """Stands in for ``request.user`` when a device calls: it acts for one patient only."""

    device: Device
    is_authenticated: bool = True
    is_active: bool = True
    role: str = "device"

    def get_username(self) -> str:
        return f"device:{self.device.pk}"


class DeviceTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = bearer_token(request)
        if raw is None or not raw.startswith("dv_"):
            return None
        token = (
            DeviceToken.objects.select_related("device__patient")
            .filter(key_hash=hash_token(raw), revoked_at=None)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked device token.")
        device = token.device
        if device.lent_to is not None and device.lent_to < timezone.localdate():
            raise exceptions.AuthenticationFailed("This device is no longer lent out.")
        return DevicePrincipal(device=device), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="devices"'
