"""python manage.py load_instruments — import every shipped instrument with its scoring spec
(questionnaires.instruments.instrument_load) and give each programme using it its safety net
(alerts.safety). A command that composes apps, like a page that does, lives in clinic."""

from typing import Any

from django.core.management.base import BaseCommand

from alerts.safety import safety_rules_ensure
from patients.models import Program
from questionnaires import library
from questionnaires.instruments import instrument_load


class Command(BaseCommand):
    help = "Import the shipped questionnaire library (questionnaires/library) with its scoring. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        for name in library.names():
            questionnaire, changed = instrument_load(name=name)
            # Each programme using any version of the instrument has its safety net (issue 19);
            # one switched off stays off.
            safety_rules_ensure(program_ids=Program.objects.filter(questionnaires__url=questionnaire.url)
                                .values_list("pk", flat=True), urls=[questionnaire.url])
            state = "imported" if changed else "already up to date"
            scored = "scored" if questionnaire.scoring else "unscored"
            self.stdout.write(f"{name}: {state} ({questionnaire.url}|{questionnaire.version}, {scored})")
