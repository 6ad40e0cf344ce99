"""Patient data read in the admin is audited like any other read.

An administrator's list page, record, history and delete confirmation of a model that holds
patient data leave one audit row per patient shown, as the clinicians' pages do."""

import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import models
from django.http import HttpRequest, HttpResponse

from audit.models import Action
from audit.services import audit_record_many, client_ip


class PatientDataAdmin(admin.ModelAdmin[Any]):
    """``patient_path``: the attributes from a row to its patient's id (``"patient_id"``, or
    ``"occurrence.patient_id"``); list pages select along it, so reading it costs no query."""

    patient_path = "patient_id"

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        related = self.patient_path.rpartition(".")[0].replace(".", "__")
        return queryset.select_related(related) if related else queryset

    def _patient_of(self, obj: models.Model) -> uuid.UUID | None:
        value: object = obj
        for name in self.patient_path.split("."):
            value = getattr(value, name, None)
        return value if isinstance(value, uuid.UUID) else None  # the path ends at the patient's id

    def _audit(self, request: HttpRequest, what: str, objects: list[models.Model]) -> None:
        action = Action.UPDATE if request.method == "POST" else Action.READ
        resource = f"{self.model.__name__} {what} (admin)"
        patients = list(dict.fromkeys(self._patient_of(obj) for obj in objects))
        reads = [(resource, patient_id) for patient_id in patients if patient_id is not None]
        if reads:
            audit_record_many(user=request.user, action=action, reads=reads, ip=client_ip(request))

    def _audit_one(self, request: HttpRequest, object_id: str, what: str) -> None:
        obj = self.get_object(request, unquote(object_id))
        # Only what the page will show: a refused page is Django's 403, with nothing read.
        if obj is not None and self.has_view_or_change_permission(request, obj):
            self._audit(request, f"{what} {object_id}", [obj])

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:  # not a redirect after an action
            self._audit(request, "list", list(changelist.result_list))
        return response

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self._audit_one(request, object_id, "record")
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request: HttpRequest, object_id: str,
                     extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self._audit_one(request, object_id, "history")
        return super().history_view(request, object_id, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self._audit_one(request, object_id, "delete")
        return super().delete_view(request, object_id, extra_context)
