"""FHIR ``Group`` read and search: the saved cohorts, for quality staff and administrators.

``Group/{id}/$export`` lives in the exports app."""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from audit.models import Action
from audit.services import audit_record
from interop.group import cohort_to_group
from interop.search_resources import group_search, parse_request
from interop.views import FhirView, role_authorise
from outcomes.models import Cohort
from outcomes.selectors import cohort_count, cohorts_all
from smart.principal import SYSTEM_ROLE

_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome")
# A system client (ADR 0018) reaches here only with a Group scope (smart.permissions).
_ALLOWED = (Role.QUALITY, Role.ADMIN, SYSTEM_ROLE)
_ID = re.compile(r"[0-9]{1,11}")


def _authorise(request: Request, resource: str) -> None:
    role_authorise(request, allowed=_ALLOWED, resource=resource,
                   refusal="Cohorts are for quality staff and administrators.")


class GroupSearchView(FhirView):
    @extend_schema(
        parameters=[OpenApiParameter("name", str, description="the start of the cohort's name "
                                                             "(case-insensitive; name:contains for any part)")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="searchset Bundle of Groups"),
                   401: _OUTCOME, 403: _OUTCOME},
        tags=["fhir"], operation_id="fhir_Group_search",
    )
    def get(self, request: Request) -> Response:
        _authorise(request, "Group search (FHIR)")
        search = parse_request(request, "Group")
        audit_record(user=request.user, action=Action.SEARCH, resource="Group search (FHIR, aggregate)",
                     request=request)
        return Response(group_search(search, request.build_absolute_uri("/fhir").rstrip("/"), cohorts_all(),
                                     lambda c: cohort_to_group(c, member_count=cohort_count(cohort=c))))


class GroupReadView(FhirView):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R4 Group"),
                   401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
        tags=["fhir"], operation_id="fhir_Group_read",
    )
    def get(self, request: Request, group_id: str) -> Response:
        resource = f"Group/{group_id[:40]} (FHIR)"
        _authorise(request, resource)
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        cohort = (Cohort.objects.select_related("program").filter(pk=int(group_id)).first()
                  if _ID.fullmatch(group_id) else None)
        if cohort is None:
            raise exceptions.NotFound(f"No Group with id {group_id[:40]!r}.")
        audit_record(user=request.user, action=Action.READ, resource=resource, request=request)
        return Response(cohort_to_group(cohort, member_count=cohort_count(cohort=cohort)))
