from django.apps import AppConfig


class ClinicConfig(AppConfig):
    """The pages that compose several apps: the clinician's patient page and its forms, the patient
    list, the review pages, the relatives' pages, the cross-app admin and the demo command. It
    sits above every domain app (docs/architecture.md, "Layers"); nothing imports it but the URLs."""

    name = "clinic"
