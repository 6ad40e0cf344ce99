from django.apps import AppConfig


class EditorConfig(AppConfig):
    """The programme editor (issue 24): pages that set up a programme — its texts, measures,
    questionnaires, schedules and rules — without the Django admin and without JSON. No models of
    its own: it composes patients, questionnaires, schedules and alerts through their services."""

    name = "editor"
    verbose_name = "Programme editor"
