"""``POST /api/v1/rules/backtest``: the back-test for programs (analysis scripts, a rule
library's CI), with the candidate as JSON — several new and changed rules at once. People use
the typed forms instead (the programme editor's trial, /rules/backtest/). Administrators only;
nothing is stored and nobody is alerted. Patients are named by id, and only those the caller
may see; each is a read of that patient's record in the audit."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from alerts.backtest import MAX_DAYS, Counts, backtest_run
from audit.models import Action
from audit.services import audit_record
from patients.access import patients_for


class BacktestIn(serializers.Serializer[Any]):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS)
    resolve_after_hours = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    candidate = serializers.ListField(
        child=serializers.DictField(), required=False, default=list,
        help_text='Changes and new rules, e.g. [{"rule": 3, "params": {"low": 90}}, {"program": "lung", '
                  '"kind": "news2", "name": "NEWS2", "severity": "yellow", "params": {}}]; "params" of an '
                  'existing rule are merged over its own, "active": false leaves it out.')


class CountsOut(serializers.Serializer[Any]):
    alerts = serializers.IntegerField()
    red = serializers.IntegerField()
    yellow = serializers.IntegerField()
    findings = serializers.IntegerField()
    # Not "errors": that name is the serializer's own (its validation errors).
    rule_errors = serializers.IntegerField(help_text="Evaluations that failed (each is a RuleError row live).")


class RuleRowOut(serializers.Serializer[Any]):
    rule = serializers.IntegerField(allow_null=True, help_text="The rule's id; null for a new rule.")
    name = serializers.CharField()
    program_id = serializers.IntegerField()
    kind = serializers.CharField()
    change = serializers.CharField()
    current = CountsOut(allow_null=True)
    candidate = CountsOut(allow_null=True)


class PatientRowOut(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    current = serializers.IntegerField()
    candidate = serializers.IntegerField()


class BacktestOut(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    events = serializers.DictField(child=serializers.IntegerField())
    totals = serializers.DictField(child=CountsOut())
    rules = RuleRowOut(many=True)
    patients = PatientRowOut(many=True, help_text="Only patients the caller may see.")
    patients_not_shown = serializers.IntegerField()


def _counts(counts: Counts | None) -> dict[str, int] | None:
    return None if counts is None else {"alerts": counts.alerts, "red": counts.red, "yellow": counts.yellow,
                                        "findings": counts.findings, "rule_errors": counts.errors}


class BacktestView(APIView):
    @extend_schema(request=BacktestIn, responses={200: BacktestOut}, summary="Back-test a candidate rule set")
    def post(self, request: Request) -> Response:
        if getattr(request.user, "role", None) != Role.ADMIN:
            raise PermissionDenied("Only administrators back-test rules.")
        given = BacktestIn(data=request.data)
        given.is_valid(raise_exception=True)
        hours = given.validated_data.get("resolve_after_hours")
        try:
            result = backtest_run(candidate=given.validated_data["candidate"], days=given.validated_data["days"],
                                  resolve_after=timedelta(hours=hours) if hours else None)
        except DjangoValidationError as exc:
            raise ApiValidationError({"candidate": exc.messages}) from exc
        audit_record(user=request.user, action=Action.SEARCH, resource="Alert?backtest (API)", request=request)
        visible = set(patients_for(request.user).filter(pk__in=list(result.by_patient)).values_list("pk", flat=True))
        patients: list[dict[str, Any]] = []
        for patient_id, (current, candidate) in result.by_patient.items():
            if patient_id in visible:
                audit_record(user=request.user, action=Action.READ, resource="Alert?backtest (alert counts)",
                             patient_id=patient_id, request=request)
                patients.append({"id": patient_id, "current": current, "candidate": candidate})
        rows = [{"rule": row["spec"].rule_id, "name": row["spec"].name, "program_id": row["spec"].program_id,
                 "kind": row["spec"].kind, "change": row["change"], "current": _counts(row["current"]),
                 "candidate": _counts(row["candidate"])} for row in result.rows()]
        return Response(BacktestOut({
            "start": result.start, "end": result.end, "events": result.events,
            "totals": {k: _counts(v) for k, v in result.totals.items()}, "rules": rows, "patients": patients,
            "patients_not_shown": len(result.by_patient) - len(patients)}).data)
