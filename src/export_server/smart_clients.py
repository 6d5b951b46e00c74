"""The SMART clients file (`server --fhir-clients FILE`): client ids and their public keys.

    {"clients": [{"client_id": "bulk-client",
                  "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "...", "y": "...",
                                     "kid": "key-1", "alg": "ES384"}]}}]}

Each client has at least one key: RSA (at least 2048 bits; RS384) or EC on P-384 (ES384). A key's
`alg`, when given, must be the one its type allows; a key holding a private part (`d`) is refused,
since the file is meant to hold public keys only. docs/fhir-auth.md describes the format.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from export_server.errors import ClientsFileError

# The algorithms SMART Backend Services allows, by key type.
ALGORITHM_OF_KEY_TYPE = {"RSA": "RS384", "EC": "ES384"}
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class ClientKey:
    """One public key of a client: the names it answers to (its `kid`, if any, and its RFC 7638
    thumbprint, which is how the tool names a PEM key), its algorithm."""

    names: frozenset[str]
    algorithm: str
    key: PyJWK


@dataclass(frozen=True)
class Client:
    client_id: str
    keys: tuple[ClientKey, ...]

    def keys_for(self, algorithm: str, kid: str | None) -> list[ClientKey]:
        """The keys that may have signed an assertion with this header's `alg` and `kid`."""
        return [
            k for k in self.keys if k.algorithm == algorithm and (kid is None or kid in k.names)
        ]


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK (SHA-256, base64url): the `kid` the tool puts in
    the header for a key that has none (a PEM file), so such a key is found whatever `kid` it
    was registered with."""
    members = ("e", "kty", "n") if jwk.get("kty") == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk.get(m) for m in members}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_clients(path: Path) -> dict[str, Client]:
    """The clients of the file at `path`, by client id; raises ClientsFileError (one line)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientsFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientsFileError(f"{path}: not JSON ({exc})") from None
    entries = document.get("clients") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ClientsFileError(f'{path}: expected {{"clients": [...]}} with at least one client')
    clients: dict[str, Client] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: clients[{index}]"
        client = _client(entry, where)
        if client.client_id in clients:
            raise ClientsFileError(f"{where}: client_id {client.client_id!r} appears twice")
        clients[client.client_id] = client
    return clients


def _client(entry: object, where: str) -> Client:
    if not isinstance(entry, dict):
        raise ClientsFileError(f"{where}: expected an object with client_id and jwks")
    client_id = entry.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ClientsFileError(f"{where}: client_id must be a non-empty string")
    jwks = entry.get("jwks")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ClientsFileError(f'{where}: jwks must be {{"keys": [...]}} with at least one key')
    return Client(client_id, tuple(_key(k, f"{where}.jwks.keys[{i}]") for i, k in enumerate(keys)))


def _key(jwk: object, where: str) -> ClientKey:
    if not isinstance(jwk, dict):
        raise ClientsFileError(f"{where}: a key must be a JSON object (a JWK)")
    kty = jwk.get("kty")
    algorithm = ALGORITHM_OF_KEY_TYPE.get(kty) if isinstance(kty, str) else None
    if algorithm is None:
        raise ClientsFileError(f"{where}: kty must be RSA or EC, not {kty!r}")
    if "d" in jwk:
        raise ClientsFileError(f"{where}: holds a private key (d): register the public key only")
    if jwk.get("alg", algorithm) != algorithm:
        raise ClientsFileError(f"{where}: alg must be {algorithm} for a {kty} key")
    if kty == "EC" and jwk.get("crv") != "P-384":
        raise ClientsFileError(f"{where}: an EC key must be on P-384 (ES384)")
    try:
        key = PyJWK(jwk, algorithm)
    except (PyJWTError, ValueError, TypeError) as exc:
        raise ClientsFileError(f"{where}: not a usable {kty} key ({exc})") from None
    if kty == "RSA" and key.key.key_size < MIN_RSA_BITS:
        raise ClientsFileError(f"{where}: an RSA key must have at least {MIN_RSA_BITS} bits")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ClientsFileError(f"{where}: kid must be a string")
    names = {thumbprint(jwk), kid} if kid else {thumbprint(jwk)}
    return ClientKey(frozenset(names), algorithm, key)
