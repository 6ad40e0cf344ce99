from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        import proplatform.openapi  # noqa: F401 - registers the OpenAPI auth extensions
