"""OpenAPI descriptions of our authentication schemes (drf-spectacular extensions). Imported from
the apps' ready() hook so that the schema generator knows them."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "personToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer",
                "description": "A person's token (pp_…) from POST /api/v1/auth/token."}


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.authentication.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer",
                "description": "A home device's token (dv_…), issued when the device is lent out."}
