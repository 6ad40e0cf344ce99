"""OpenAPI description of system clients' tokens (drf-spectacular), registered by SmartConfig.ready()."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from smart.discovery import TOKEN_PATH
from smart.views import scopes_supported


class SystemTokenScheme(OpenApiAuthenticationExtension):
    target_class = "smart.authentication.SystemTokenAuthentication"
    name = "systemClientToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "oauth2", "description": "SMART Backend Services: a system client's token (sb_…) for "
                                                 "/fhir, from client_credentials with a private_key_jwt "
                                                 "assertion (RS384/ES384). See /.well-known/smart-configuration.",
                "flows": {"clientCredentials": {"tokenUrl": TOKEN_PATH,
                                                "scopes": {s: s for s in scopes_supported()}}}}
