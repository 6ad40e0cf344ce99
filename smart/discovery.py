"""How the CapabilityStatement names SMART Backend Services (``rest.security``)."""

from typing import Any

from django.conf import settings

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret


def token_url_for(server_root: str) -> str:
    """The token endpoint under ``server_root`` (scheme and host), unless SMART_TOKEN_URL pins it."""
    return settings.SMART_TOKEN_URL or f"{server_root.rstrip('/')}{TOKEN_PATH}"


def capability_security(server_root: str) -> dict[str, Any]:
    return {
        "cors": False,
        "extension": [{"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": token_url_for(server_root)}]}],
        "service": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                         "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
             "text": "SMART Backend Services (client_credentials, private_key_jwt RS384/ES384; "
                     "/.well-known/smart-configuration) for system clients."},
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                         "code": "OAuth", "display": "OAuth"}],
             "text": "Bearer token from POST /api/v1/auth/token, or a browser session, for people."},
        ],
        "description": "System clients: discovery at /.well-known/smart-configuration, tokens at "
                       f"{TOKEN_PATH}. People: POST /api/v1/auth/token.",
    }
