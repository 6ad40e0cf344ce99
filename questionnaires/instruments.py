"""Import a shipped instrument (questionnaires/library) with its scoring spec: ``instrument_load``,
used by ``manage.py load_instruments`` (clinic, which also gives each programme its safety net)
and by the programme editor's "from the library".

Safe to run again: an instrument already stored at its url+version is left as it is. A stored
version whose content or scoring differs from the library is refused, never overwritten: responses
were made (and scored) against what is stored, so a change needs a new version.
"""


from django.core.exceptions import ValidationError

# A broken spec or a changed stored version is a CommandError, which the editor turns into a
# message next to the field.
from django.core.management.base import CommandError
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
