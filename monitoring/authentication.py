from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.authentication import bearer_token
from accounts.models import hash_token
from monitoring.models import Device, DeviceToken
from patients.models import Patient
from proplatform.db import prepared_cursor


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
        found = device_token_lookup(hash_token(raw))
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked device token.")
        token_id, device = found
        if refusal := device_refusal(device):
            raise exceptions.AuthenticationFailed(refusal)
        return DevicePrincipal(device=device), token_id  # request.auth: the token's id

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="devices"'


def device_refusal(device: Device) -> str | None:
    """Why a device with an unrevoked token may not send today, or None."""
    if device.lent_to is not None and device.lent_to < timezone.localdate():
        return "This device is no longer lent out."
    return None


def device_token_lookup(key_hash: str) -> tuple[int, Device] | None:
    """The id of an unrevoked token and its device (with the patient), or None.

    Every device request starts here. On PostgreSQL one hand-written join, prepared once per
    connection (planning the join cost PostgreSQL more than running it), turned into full
    model instances with ``from_db``: compiling the equivalent select_related query cost more
    than running it (about 1 ms a request). Elsewhere the ORM."""
    if connection.vendor != "postgresql":
        token = (DeviceToken.objects.select_related("device__patient")
                 .filter(key_hash=key_hash, revoked_at=None).first())
        return None if token is None else (token.pk, token.device)
    device_fields = [f.attname for f in Device._meta.concrete_fields]
    patient_fields = [f.attname for f in Patient._meta.concrete_fields]
    with prepared_cursor() as cursor:
        cursor.execute(_device_sql(), [key_hash], prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    db = DeviceToken.objects.db
    device = Device.from_db(db, device_fields, row[1:1 + len(device_fields)])
    device.patient = Patient.from_db(db, patient_fields, row[1 + len(device_fields):])
    return row[0], device


@cache
def _device_sql() -> str:
    def columns(model: Any, alias: str) -> str:
        return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)

    return (
        f"SELECT t.id, {columns(Device, 'd')}, {columns(Patient, 'p')} "  # noqa: S608 - names from _meta
        f"FROM {DeviceToken._meta.db_table} t "
        f"JOIN {Device._meta.db_table} d ON d.id = t.device_id "
        f"JOIN {Patient._meta.db_table} p ON p.id = d.patient_id "
        "WHERE t.key_hash = %s AND t.revoked_at IS NULL ORDER BY t.id LIMIT 1"
    )
