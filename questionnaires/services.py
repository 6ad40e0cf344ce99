from typing import Any

import pydantic
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from patients.models import Patient
from questionnaires import definition as qdef
from questionnaires.models import Questionnaire, QuestionnaireResponse


def questionnaire_import(*, resource: dict[str, Any]) -> Questionnaire:
    """Store a FHIR R4 Questionnaire. Refuses, naming each item, what cannot be rendered
    faithfully; never drops a part silently. Re-importing the same url+version updates
    nothing and returns the stored one."""
    try:
        parsed = qdef.parse(resource)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from exc
    problems = parsed.unsupported()
    if not parsed.url:
        problems.insert(0, "url: a canonical url is required")
    if problems:
        raise ValidationError(problems)
    version = parsed.version or "1"
    existing = Questionnaire.objects.filter(url=parsed.url, version=version).first()
    if existing is not None:
        if existing.resource != resource:
            raise ValidationError(
                f"Version {version} of {parsed.url} exists with other content; give it a new version."
            )
        return existing
    return Questionnaire.objects.create(
        url=parsed.url,
        version=version,
        title=parsed.title or parsed.name or parsed.url,
        status=parsed.status,
        resource=resource,
    )


def _enqueue_evaluation(response_id: int) -> None:
    from questionnaires.tasks import evaluate_response

    evaluate_response.delay(response_id)


def response_submit(
    *, patient: Patient, questionnaire: Questionnaire, items: list[dict[str, Any]], author: User
) -> QuestionnaireResponse:
    with transaction.atomic():
        response = QuestionnaireResponse.objects.create(
            patient=patient, questionnaire=questionnaire, items=items, author=author
        )
        transaction.on_commit(lambda: _enqueue_evaluation(response.pk))
    return response
