from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmartConfig(AppConfig):
    name = "smart"
    verbose_name = _("SMART backend services")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import smart.openapi  # noqa: F401 - registers the OpenAPI auth extension
