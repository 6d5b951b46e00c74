"""Keys, clients files and client assertions for the SMART Backend Services tests.

Every key is made with `cryptography` when the tests run: no private key is committed.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TestClientKey:
    """A client id, its private key and how its assertions are signed."""

    __test__ = False  # not a pytest test class

    client_id: str
    key: PrivateKey
    algorithm: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        jwk = _jwk(self.key.public_key(), self.algorithm)
        return {**jwk, "kid": self.kid, "alg": self.algorithm}

    def private_jwk(self) -> dict[str, Any]:
        return {**_jwk(self.key, self.algorithm), "kid": self.kid, "alg": self.algorithm}

    def pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip

    def assertion(self, aud: str, **changes: Any) -> str:
        """A signed assertion for `aud`; `changes` replace claims (None drops one), and
        `key=`, `algorithm=`, `kid=` sign it otherwise."""
        now = int(time.time())
        key = changes.pop("key", self.key)
        algorithm = changes.pop("algorithm", self.algorithm)
        headers = {"kid": changes.pop("kid", self.kid)}
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": aud, "exp": now + 300,
                  "jti": uuid.uuid4().hex, **changes}  # fmt: skip
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _jwk(key: Any, algorithm: str) -> dict[str, Any]:
    algorithms = jwt.algorithms.get_default_algorithms()
    return dict(json.loads(algorithms[algorithm].to_jwk(key)))


def rsa_client(client_id: str = "bulk-rsa", kid: str = "rsa-1") -> TestClientKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return TestClientKey(client_id, key, "RS384", kid)


def ec_client(client_id: str = "bulk-ec", kid: str = "ec-1") -> TestClientKey:
    return TestClientKey(client_id, ec.generate_private_key(ec.SECP384R1()), "ES384", kid)


def clients_document(*clients: TestClientKey) -> dict[str, Any]:
    return {
        "clients": [{"client_id": c.client_id, "jwks": {"keys": [c.public_jwk()]}} for c in clients]
    }


def write_clients_file(path: Path, *clients: TestClientKey) -> Path:
    path.write_text(json.dumps(clients_document(*clients)), encoding="utf-8")
    return path


def token_form(assertion: str, scope: str = "system/*.read", **changes: str) -> dict[str, str]:
    """A token request's form fields; `changes` replace or add fields."""
    return {"grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion,
            **changes}  # fmt: skip
