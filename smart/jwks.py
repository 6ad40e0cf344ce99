"""A system client's public keys (JWKS, RFC 7517), checked when an admin saves them and again
when a key is used.

Only public keys that can verify RS384 or ES384 are accepted: RSA keys of at least 2048 bits and
EC keys on P-384. A key with private members (``d``, ``p``, …) or a symmetric key (``oct``) is
refused — pasting a private key into the admin would put it in the database and its backups,
and an ``oct`` key would let anyone holding it forge assertions (and is the way HS256
"public key as secret" confusion starts). A ``jwks_uri`` is fetched over HTTPS with a short
timeout and a size limit, and kept in the cache for ``SMART_JWKS_CACHE_SECONDS``."""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

ALGORITHMS = ("RS384", "ES384")
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_MAX_JWKS_BYTES = 64 * 1024


class JwksUnavailable(Exception):
    """A jwks_uri could not be fetched or held no valid key set."""


@dataclass(frozen=True)
class PublicKey:
    kid: str
    algorithm: str  # RS384 or ES384: what this key verifies
    key: Any  # a cryptography public key


def _algorithm_of(key: dict[str, Any]) -> str:
    kty = key.get("kty")
    if kty == "RSA":
        algorithm = "RS384"
    elif kty == "EC":
        if key.get("crv") != "P-384":
            raise ValidationError(_("EC key %(kid)s is on curve %(crv)s; ES384 needs P-384.")
                                  % {"kid": key.get("kid"), "crv": key.get("crv")})
        algorithm = "ES384"
    else:
        raise ValidationError(_("Key %(kid)s has key type %(kty)s; only RSA (RS384) and EC P-384 (ES384) "
                                "public keys are accepted.") % {"kid": key.get("kid"), "kty": kty})
    if key.get("alg") not in (None, algorithm):
        raise ValidationError(_("Key %(kid)s is marked for %(alg)s; this server accepts RS384 and ES384.")
                              % {"kid": key.get("kid"), "alg": key.get("alg")})
    return algorithm


def jwks_parse(value: Any) -> list[PublicKey]:
    """The usable public keys of a JWKS document; ValidationError naming the first defect."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise ValidationError(_('A JWKS is a JSON object with a non-empty list "keys".'))
    keys: list[PublicKey] = []
    for index, key in enumerate(value["keys"]):
        if not isinstance(key, dict):
            raise ValidationError(_("Key %(n)s is not a JSON object.") % {"n": index + 1})
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 200:
            raise ValidationError(_('Key %(n)s has no "kid"; the client names its key by kid.') % {"n": index + 1})
        private = [m for m in _PRIVATE_MEMBERS if m in key]
        if private:
            raise ValidationError(_("Key %(kid)s holds private key material (%(members)s): paste the public "
                                    "key only, and treat this private key as disclosed.")
                                  % {"kid": kid, "members": ", ".join(private)})
        algorithm = _algorithm_of(key)
        if key.get("use") not in (None, "sig"):
            raise ValidationError(_('Key %(kid)s has use %(use)s; signing keys have use "sig".')
                                  % {"kid": kid, "use": key.get("use")})
        if "key_ops" in key and "verify" not in (key["key_ops"] or []):
            raise ValidationError(_('Key %(kid)s has key_ops without "verify".') % {"kid": kid})
        try:
            public = jwt.PyJWK(key, algorithm=algorithm).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise ValidationError(_("Key %(kid)s cannot be read: %(error)s") % {"kid": kid, "error": exc}) from None
        if algorithm == "RS384" and public.key_size < 2048:
            raise ValidationError(_("RSA key %(kid)s has %(bits)s bits; at least 2048 are required.")
                                  % {"kid": kid, "bits": public.key_size})
        if any(k.kid == kid for k in keys):
            raise ValidationError(_("Two keys have the kid %(kid)s.") % {"kid": kid})
        keys.append(PublicKey(kid=kid, algorithm=algorithm, key=public))
    return keys


def jwks_fetch(uri: str) -> list[PublicKey]:
    """The keys behind a jwks_uri, cached; JwksUnavailable when they cannot be had."""
    cache_key = f"smart:jwks:{uri}"
    document = cache.get(cache_key)
    if document is None:
        try:
            with httpx.Client(timeout=settings.SMART_JWKS_TIMEOUT_SECONDS, follow_redirects=False) as client, \
                    client.stream("GET", uri, headers={"Accept": "application/json"}) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"jwks_uri answered {response.status_code}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_JWKS_BYTES:
                        raise JwksUnavailable("jwks_uri document is too large")
            document = json.loads(body)
        except (httpx.HTTPError, ValueError) as exc:
            raise JwksUnavailable(f"jwks_uri could not be read ({type(exc).__name__})") from None
        cache.set(cache_key, document, settings.SMART_JWKS_CACHE_SECONDS)
    try:
        return jwks_parse(document)
    except ValidationError as exc:
        raise JwksUnavailable(f"jwks_uri holds no valid key set: {exc.messages[0]}") from None
