"""The JWT libraries we could sign and check SMART client assertions with, side by side.

    uv run --with pyjwt==2.15.1 --with joserfc==1.8.0 --with jwcrypto==1.6.1 \\
        python -m benchmarks.bench_jwt [--rounds 200]

For each library that is installed (the others are skipped): the import time of its JWT module
in a fresh interpreter (`python -X importtime`, the cumulative microseconds of the top-level
import, median of 5 processes), then the time to sign one SMART client assertion and to verify
it (signature, `exp`, `aud`), RS384 with a 2048-bit RSA key and ES384 with a P-384 key, median
over `--rounds` rounds, the libraries interleaved. Keys are made with `cryptography` at start;
nothing is written. Whether a library reads a JWK set is a fact of its API, printed from a table.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "http://127.0.0.1:1/fhir/auth/token"
# library -> (the module to import, how it reads a JWK set)
LIBRARIES = {
    "pyjwt": ("jwt", "PyJWKSet.from_dict"),
    "joserfc": ("joserfc.jwt", "KeySet.import_key_set"),
    "jwcrypto": ("jwcrypto.jwt", "JWKSet.from_json"),
}

Sign = Callable[[dict[str, Any]], str]
Verify = Callable[[str], dict[str, Any]]


def import_microseconds(module: str, runs: int = 5) -> int:
    """The median cumulative import time of `module` in a fresh interpreter, in microseconds."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        # Lines: "import time: self [us] | cumulative | imported package"; the module's own line
        # (no leading spaces before its name) holds everything it pulled in.
        for line in done.stderr.splitlines():
            fields = line.split("|")
            if len(fields) == 3 and fields[2].rstrip() == f" {module}":
                times.append(int(fields[1]))
    return int(statistics.median(times))


def pem_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def pyjwt_pair(alg: str, private: bytes, public: bytes) -> tuple[Sign, Verify]:
    jwt: Any = importlib.import_module("jwt")
    signing = jwt.algorithms.get_default_algorithms()[alg].prepare_key(private)
    checking = jwt.algorithms.get_default_algorithms()[alg].prepare_key(public)

    def sign(claims: dict[str, Any]) -> str:
        return str(jwt.encode(claims, signing, algorithm=alg))

    def verify(token: str) -> dict[str, Any]:
        return dict(jwt.decode(token, checking, algorithms=[alg], audience=AUDIENCE))

    return sign, verify


def joserfc_pair(alg: str, private: bytes, public: bytes) -> tuple[Sign, Verify]:
    jose_jwt: Any = importlib.import_module("joserfc.jwt")
    jwk: Any = importlib.import_module("joserfc.jwk")
    kind = "RSA" if alg.startswith("RS") else "EC"
    signing = jwk.import_key(private, kind)
    checking = jwk.import_key(public, kind)
    registry = jose_jwt.JWTClaimsRegistry(aud={"essential": True, "value": AUDIENCE})

    def sign(claims: dict[str, Any]) -> str:
        return str(jose_jwt.encode({"alg": alg}, claims, signing, algorithms=[alg]))

    def verify(token: str) -> dict[str, Any]:
        decoded = jose_jwt.decode(token, checking, algorithms=[alg])
        registry.validate(decoded.claims)
        return dict(decoded.claims)

    return sign, verify


def jwcrypto_pair(alg: str, private: bytes, public: bytes) -> tuple[Sign, Verify]:
    jwt: Any = importlib.import_module("jwcrypto.jwt")
    jwk: Any = importlib.import_module("jwcrypto.jwk")
    signing = jwk.JWK.from_pem(private)
    checking = jwk.JWK.from_pem(public)

    def sign(claims: dict[str, Any]) -> str:
        token = jwt.JWT(header={"alg": alg}, claims=claims)
        token.make_signed_token(signing)
        return str(token.serialize())

    def verify(token: str) -> dict[str, Any]:
        checked = jwt.JWT(
            jwt=token, key=checking, algs=[alg], check_claims={"exp": None, "aud": AUDIENCE}
        )
        return dict(json.loads(checked.claims))

    return sign, verify


BASELINE = "cryptography.hazmat.primitives.serialization"
PAIRS = {"pyjwt": pyjwt_pair, "joserfc": joserfc_pair, "jwcrypto": jwcrypto_pair}


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "bench", "sub": "bench", "aud": AUDIENCE, "exp": now + 300,
            "jti": uuid.uuid4().hex}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    present = [name for name, (module, _) in LIBRARIES.items()
               if importlib.util.find_spec(module.split(".")[0]) is not None]  # fmt: skip
    if not present:
        raise SystemExit("none of the libraries is installed: see the command in the docstring")
    keys = {
        "RS384": pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ES384": pem_of(ec.generate_private_key(ec.SECP384R1())),
    }
    timings: dict[tuple[str, str, str], list[float]] = {}
    pairs = {(name, alg): PAIRS[name](alg, *keys[alg]) for name in present for alg in keys}
    for _ in range(args.rounds):
        for (name, alg), (sign, verify) in pairs.items():  # interleaved: same machine weather
            payload = claims()
            started = time.perf_counter()
            token = sign(payload)
            signed = time.perf_counter()
            assert verify(token)["jti"] == payload["jti"]
            verified = time.perf_counter()
            timings.setdefault((name, alg, "sign"), []).append(signed - started)
            timings.setdefault((name, alg, "verify"), []).append(verified - signed)
    print("| library | version | import (ms) | RS384 sign / verify (ms) | ES384 sign / verify (ms) "
          "| JWK set |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in present:
        module, jwks = LIBRARIES[name]
        from importlib.metadata import version

        cells = [name, version(name), f"{import_microseconds(module) / 1000:.1f}"]
        for alg in keys:
            sign_ms = statistics.median(timings[(name, alg, "sign")]) * 1000
            verify_ms = statistics.median(timings[(name, alg, "verify")]) * 1000
            cells.append(f"{sign_ms:.2f} / {verify_ms:.2f}")
        cells.append(f"`{jwks}`")
        print("| " + " | ".join(cells) + " |")
    # What every contender pays anyway: the signatures are cryptography's.
    base = import_microseconds(BASELINE) / 1000
    print(f"| (`{BASELINE}` alone) | | {base:.1f} | | | |")


if __name__ == "__main__":
    main()
