"""What a system client's token lets it do on the FHIR API, in one table (ADR 0018).

Checked when a system token is authenticated (SystemTokenAuthentication): the endpoint against
the token's scopes; people and devices never come here. Endpoints not in
the table (alerts as Flag/DetectedIssue, Bundles, every write) are refused: a backend service
reads, and only what it was given. Patient data outside $export needs a client allowed
identified data (ADR 0007: secondary use is pseudonymised by default). Refusals are audited."""

from rest_framework import exceptions
from rest_framework.request import Request

from audit.models import Action, Outcome
from audit.services import audit_record
from smart.principal import SystemPrincipal
from smart.scopes import EXPORT_TYPES, PATIENT_DATA_TYPES

# url name -> (resource type, the scope letters a GET needs)
READS: dict[str, tuple[str, str]] = {
    "fhir-patient": ("Patient", "r"),
    "fhir-patient-search": ("Patient", "s"),
    "fhir-patient-search-post": ("Patient", "s"),  # POST _search: a search, its parameters in the body
    "fhir-questionnaire-response": ("QuestionnaireResponse", "r"),
    "fhir-observation": ("Observation", "r"),
    "fhir-observations": ("Observation", "s"),
    "fhir-questionnaire-responses": ("QuestionnaireResponse", "s"),
    "fhir-questionnaire": ("Questionnaire", "r"),
    "fhir-questionnaires": ("Questionnaire", "s"),
    "fhir-group": ("Group", "r"),
    "fhir-groups": ("Group", "s"),
}
# $export: the kick-off needs read and search on some exportable type (the export is narrowed to
# the types the scopes cover, exports.services); status, files and cancel check the job's types
# against the token in exports.views.
EXPORT_KICKOFF = frozenset({"fhir-export", "fhir-patient-export", "fhir-group-export"})
EXPORT_JOB = frozenset({"fhir-export-status", "fhir-export-file"})


def refusal(principal: SystemPrincipal, name: str | None, method: str) -> str | None:
    """Why ``principal`` may not call the endpoint ``name`` with ``method``, or None."""
    if name in EXPORT_KICKOFF and method in ("GET", "POST"):
        if not any(principal.may(t, "rs") for t in EXPORT_TYPES):
            return "This token has no system/<type>.read (or .rs) scope for any exported type."
        if name == "fhir-group-export" and not principal.may("Group", "r"):
            return "Group/{id}/$export needs the scope system/Group.read."
        return None
    if name in EXPORT_JOB and method in ("GET", "DELETE"):
        return None
    if name == "fhir-metadata" and method in ("GET", "HEAD"):
        return None  # public anyway
    if name in READS and (method in ("GET", "HEAD") or (name == "fhir-patient-search-post" and method == "POST")):
        resource_type, letters = READS[name]
        if not principal.may(resource_type, letters):
            return f"This token's scopes do not include system/{resource_type}.{letters} (or .read)."
        if resource_type in PATIENT_DATA_TYPES and not principal.identified_allowed:
            return (f"{resource_type} is identified patient data; this client receives pseudonymised data "
                    "only, through $export.")
        return None
    return "System clients may not use this endpoint (backend services read FHIR resources and $export)."


def system_access_check(request: Request, principal: SystemPrincipal) -> None:
    """Refuse (403, audited) what the table does not allow ``principal`` on this request.

    Called by SystemTokenAuthentication as it authenticates, so it holds for every view that
    accepts the token — also one that sets its own ``permission_classes`` (the metadata's
    AllowAny, or a view added later), which a permission class in DEFAULT_PERMISSION_CLASSES
    would silently miss."""
    match = getattr(request, "resolver_match", None)
    reason = refusal(principal, match.url_name if match else None, request.method or "")
    if reason is None:
        return
    action = {"GET": Action.READ, "HEAD": Action.READ, "POST": Action.CREATE}.get(request.method or "",
                                                                              Action.UPDATE)
    audit_record(user=principal, action=action, outcome=Outcome.DENIED, request=request,
                 resource=f"{request.method} {request.path}"[:250])
    raise exceptions.PermissionDenied(reason)
