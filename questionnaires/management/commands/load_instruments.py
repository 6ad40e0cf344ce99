"""python manage.py load_instruments — import every shipped instrument with its scoring spec.

Safe to run again: an instrument already stored at its url+version is left as it is. A stored
version whose content or scoring differs from the library is refused, never overwritten: responses
were made (and scored) against what is stored, so a change needs a new version.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from questionnaires import library
from questionnaires.models import Questionnaire
from questionnaires.scoring import ScoringSpecError, parse_spec, spec_problems
from questionnaires.services import questionnaire_import


def instrument_load(*, name: str) -> tuple[Questionnaire, bool]:
    """Import one library instrument and attach its scoring. Returns (row, changed)."""
    resource = library.load(name)
    raw_scoring = library.load_scoring(name)
    if raw_scoring is not None:
        # Check the spec before anything is stored: a broken spec must not reach the database.
        try:
            spec = parse_spec(raw_scoring)
        except ScoringSpecError as exc:
            raise CommandError(f"{name}: {exc}") from exc
        problems = spec_problems(spec, resource)
        if problems:
            raise CommandError(f"{name}: scoring does not fit the questionnaire: " + "; ".join(problems))
    with transaction.atomic():
        before = Questionnaire.objects.filter(url=resource["url"], version=resource["version"]).first()
        try:
            questionnaire = questionnaire_import(resource=resource)
        except ValidationError as exc:
            raise CommandError(f"{name}: " + "; ".join(exc.messages)) from exc
        changed = before is None
        if questionnaire.scoring != raw_scoring:
            if questionnaire.scoring is not None:
                raise CommandError(
                    f"{name}: version {questionnaire.version} is stored with other scoring; "
                    "give the instrument a new version."
                )
            # Imported earlier without its scoring (e.g. by the demo): the spec belongs to this
            # version, so attach it now. The guard makes two concurrent runs write it once.
            Questionnaire.objects.filter(pk=questionnaire.pk, scoring__isnull=True).update(scoring=raw_scoring)
            questionnaire.refresh_from_db()
            changed = True
    return questionnaire, changed


class Command(BaseCommand):
    help = "Import the shipped questionnaire library (questionnaires/library) with its scoring. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        # A command composes apps like a page does; the questionnaires app itself never imports alerts.
        from alerts.safety import safety_rules_ensure
        from patients.models import Program

        for name in library.names():
            questionnaire, changed = instrument_load(name=name)
            # Each programme using any version of the instrument has its safety net (issue 19);
            # one switched off stays off.
            safety_rules_ensure(program_ids=Program.objects.filter(questionnaires__url=questionnaire.url)
                                .values_list("pk", flat=True), urls=[questionnaire.url])
            state = "imported" if changed else "already up to date"
            scored = "scored" if questionnaire.scoring else "unscored"
            self.stdout.write(f"{name}: {state} ({questionnaire.url}|{questionnaire.version}, {scored})")
