"""The tool's SMART key file: what `load_credentials` accepts, and its one-line refusals.

Keys are made at test time. No message, repr or pickle shows the private key as text.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from export_server.smart_clients import thumbprint
from export_tally.errors import SmartKeyError, UsageError
from export_tally.transport.smart_credentials import load_credentials
from tests.support.smart_keys import TestClientKey, ec_client, rsa_client


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def pem(key: object, password: bytes | None = None) -> bytes:
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.mark.parametrize("make", [rsa_client, ec_client], ids=["rsa", "ec"])
def test_a_jwk_set_gives_its_alg_and_kid(make: Callable[[], TestClientKey], tmp_path: Path) -> None:
    client = make()
    public = {"kty": "RSA", "n": "x", "e": "AQAB"}  # a public key before it: passed over
    key_file = write(tmp_path / "k.json", json.dumps({"keys": [public, client.private_jwk()]}))
    credentials = load_credentials("me", key_file, scope="system/Observation.rs")
    assert (credentials.algorithm, credentials.kid) == (client.algorithm, client.kid)
    assert credentials.scope == "system/Observation.rs"


def test_a_pem_key_is_named_by_the_thumbprint_the_server_knows_it_by(tmp_path: Path) -> None:
    client = ec_client()
    credentials = load_credentials("me", write(tmp_path / "k.pem", client.pem()))
    public = {k: v for k, v in client.public_jwk().items() if k not in ("kid", "alg")}
    assert credentials.kid == thumbprint(public)
    assert credentials.algorithm == "ES384"


def test_credentials_pickle_without_the_key_as_text(tmp_path: Path) -> None:
    client = rsa_client()
    credentials = load_credentials(
        "me", write(tmp_path / "k.json", json.dumps(client.private_jwk()))
    )
    data = pickle.dumps(credentials)
    assert client.private_jwk()["d"].encode() not in data
    assert b"PRIVATE KEY" not in data
    copy = pickle.loads(data)
    assert copy == credentials and hash(copy) == hash(credentials)
    assert repr(copy) == repr(credentials)
    assert "key=<redacted>" in repr(copy)
    assert client.private_jwk()["d"][:20] not in repr(copy)


def _rsa_jwk() -> dict[str, object]:
    return rsa_client().private_jwk()


# case -> (the file's content, made when the test runs; what the message says)
BAD_FILES: dict[str, tuple[Callable[[], bytes | str], str]] = {
    "not a key": (lambda: "hello", "not a private key"),
    "not json": (lambda: "{nope", "not JSON"),
    "public only": (lambda: json.dumps({"keys": [ec_client().public_jwk()]}), "no private RSA"),
    "es256": (lambda: json.dumps({"keys": [{**ec_client().private_jwk(), "alg": "ES256"}]}),
              "no private RSA"),
    "broken jwk": (lambda: json.dumps({"keys": [{**_rsa_jwk(), "n": "AQAB"}]}), "is not valid"),
    "p-256": (lambda: pem(ec.generate_private_key(ec.SECP256R1())), "P-384"),
    "short rsa": (lambda: pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
                  "2048 bits"),
    "encrypted": (lambda: pem(ec.generate_private_key(ec.SECP384R1()), b"secret"), "encrypted"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_key_file_is_a_usage_error_in_one_line(tmp_path: Path, case: str) -> None:
    make, message = BAD_FILES[case]
    content = make()
    key_file = write(tmp_path / "key", content)
    with pytest.raises(SmartKeyError, match=message) as raised:
        load_credentials("me", key_file)
    text = str(raised.value)
    assert isinstance(raised.value, UsageError)  # exit status 2
    assert text.startswith(f"--private-key {key_file}: ")
    assert "\n" not in text
    if isinstance(content, str) and '"d"' in content:
        assert json.loads(content)["keys"][0]["d"][:20] not in text


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SmartKeyError, match="cannot read it"):
        load_credentials("me", tmp_path / "nowhere.pem")
