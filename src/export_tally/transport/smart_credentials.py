"""SMART Backend Services credentials: a client id and its private key, read once from a file.

`load_credentials(client_id, key_file)` reads a JWK set, one JWK, or a PEM file: RS384 for an RSA
key (at least 2048 bits), ES384 for a P-384 EC key; a JWK's `alg` is respected (a key meant for
another algorithm is passed over) and its `kid` kept, a key without one is named by its RFC 7638
thumbprint (the server's clients file names it the same way). `SmartCredentials` is small and
picklable, so each worker process can get its own tokens: the key travels as DER bytes, never as
text, and no repr, message or log shows it. A file it cannot use is SmartKeyError (errors.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.exceptions import PyJWTError

from export_tally.errors import SmartKeyError

MIN_RSA_BITS = 2048


class SmartCredentials:
    """A client id, its private key (kept as DER bytes), the key's `alg` and `kid`, the scope.

    `scope` None lets the server's smart-configuration choose (see V1_SCOPE). Picklable and
    hashable; the repr shows the client id and kid only.
    """

    def __init__(
        self, client_id: str, key_der: bytes, algorithm: str, kid: str, scope: str | None = None
    ) -> None:
        self.client_id = client_id
        self.algorithm = algorithm
        self.kid = kid
        self.scope = scope
        self._key_der = key_der
        self._key: Any = None  # the loaded key, made again in each process (not pickled)

    def signing_key(self) -> Any:
        if self._key is None:
            self._key = serialization.load_der_private_key(self._key_der, password=None)
        return self._key

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_key": None}

    def _identity(self) -> tuple[str, str, str, str | None, bytes]:
        digest = hashlib.sha256(self._key_der).digest()
        return (self.client_id, self.algorithm, self.kid, self.scope, digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SmartCredentials) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return (
            f"SmartCredentials(client_id={self.client_id!r}, algorithm={self.algorithm!r}, "
            f"kid={self.kid!r}, scope={self.scope!r}, key=<redacted>)"
        )


def load_credentials(client_id: str, key_file: Path, scope: str | None = None) -> SmartCredentials:
    """The credentials of `client_id` with the private key in `key_file`; raises SmartKeyError."""
    try:
        data = key_file.read_bytes()
    except OSError as exc:
        raise SmartKeyError(f"--private-key {key_file}: cannot read it ({exc.strerror})") from None
    if data.lstrip().startswith(b"{"):
        key, kid = _key_from_jwks(data, key_file)
    else:
        key, kid = _key_from_pem(data, key_file), None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise SmartKeyError(f"--private-key {key_file}: an RSA key needs {MIN_RSA_BITS} bits")
        algorithm = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        algorithm = "ES384"
    else:
        raise SmartKeyError(
            f"--private-key {key_file}: SMART needs an RSA key (RS384) or a P-384 EC key (ES384)"
        )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SmartCredentials(client_id, der, algorithm, kid or _thumbprint(key), scope)


def _key_from_jwks(data: bytes, key_file: Path) -> tuple[Any, str | None]:
    """The first private RS384 or ES384 key of a JWK set (or of one JWK), and its `kid`."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SmartKeyError(f"--private-key {key_file}: not JSON (nor a PEM file)") from None
    keys = document.get("keys", [document]) if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise SmartKeyError(f"--private-key {key_file}: not a JWK set or a JWK")
    wanted = {"RSA": "RS384", "EC": "ES384"}
    for jwk in keys:
        if not isinstance(jwk, dict) or "d" not in jwk or jwk.get("kty") not in wanted:
            continue
        algorithm = wanted[jwk["kty"]]
        if jwk.get("alg", algorithm) != algorithm:
            continue  # a key meant for another algorithm (RS256, ES256...): not for SMART
        try:
            key = jwt.PyJWK(jwk, algorithm).key
        except (PyJWTError, ValueError, TypeError, KeyError):
            raise SmartKeyError(
                f"--private-key {key_file}: a {jwk['kty']} key is not valid"
            ) from None
        kid = jwk.get("kid")
        return key, kid if isinstance(kid, str) else None
    raise SmartKeyError(
        f"--private-key {key_file}: no private RSA (RS384) or P-384 EC (ES384) key in it"
    )


def _key_from_pem(data: bytes, key_file: Path) -> Any:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SmartKeyError(f"--private-key {key_file}: the PEM key is encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SmartKeyError(
            f"--private-key {key_file}: not a private key (JWK set or PEM)"
        ) from None


def _thumbprint(key: Any) -> str:
    """The RFC 7638 thumbprint of the key's public JWK: the `kid` of a key that has none."""
    public = json.loads(jwt.algorithms.get_default_algorithms()[
        "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"
    ].to_jwk(key.public_key()))  # fmt: skip
    members = ("e", "kty", "n") if public["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: public[m] for m in members}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
