"""What a backend service does on its side, for the tests and the live suite: make a key pair,
publish the public half as a JWKS, sign a client assertion (SMART Backend Services)."""

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from smart.services import ASSERTION_TYPE


def rsa_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_private_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP384R1())


def public_jwk(private: Any, *, kid: str) -> dict[str, Any]:
    """The public half as a JWK, as a client would paste it or publish it at its jwks_uri."""
    if isinstance(private, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "alg": "RS384", "use": "sig"}
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "ES384", "use": "sig"}


def private_jwk(private: Any, *, kid: str) -> dict[str, Any]:
    """The whole key as a JWK (with ``d``): what an admin must never paste."""
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    return {**algorithm.to_jwk(private, as_dict=True), "kid": kid}


def client_assertion(private: Any, *, client_id: str, token_url: str, kid: str, algorithm: str | None = None,
                     lifetime: int = 240, jti: str | None = None, **claims: Any) -> str:
    """A signed client assertion: iss = sub = client_id, aud = the token endpoint, exp
    ``lifetime`` seconds ahead, a fresh jti."""
    algorithm = algorithm or ("RS384" if isinstance(private, rsa.RSAPrivateKey) else "ES384")
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + lifetime, "iat": now,
               "jti": jti or uuid.uuid4().hex, **claims}
    return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": kid})


def token_form(assertion: str, scope: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": scope}
