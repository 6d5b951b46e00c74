"""What a SMART Backend Services client assertion must be, and the scopes a client may be granted.

The assertion (RFC 7523 section 3, as SMART profiles it) is a JWT signed RS384 or ES384 by one of
the client's registered keys, with `iss` = `sub` = the client id, `aud` = the token endpoint's
URL, an `exp` in the future and at most five minutes ahead, and a `jti` not seen before from that
client. Every way an assertion can fail is `invalid_client` (SMART: "the server SHALL respond with
an invalid_client error"); a description says which rule, never what the assertion held.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import jwt
from jwt.exceptions import InvalidAudienceError, InvalidSignatureError, PyJWTError

if TYPE_CHECKING:
    from export_server.smart_clients import Client

ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_SECONDS = 300  # SMART: exp "no more than five minutes in the future"
CLOCK_SKEW_SECONDS = 30  # a client's clock may run a little ahead of ours
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "jti"]
# A read scope for the whole system, SMART v1 (`.read`) or v2 (`.rs`, `.r`, `.s`), on every
# type or on one this server exports.
_READ_SCOPE = re.compile(r"system/(\*|Patient|Observation|Group)\.(read|rs|r|s)")


class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 section 5.2): `error` code and a description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def granted_scopes(requested: str) -> list[str]:
    """The scopes of a space-separated request this server grants, in the order asked for.

    Only system-level read scopes are offered; others (writes, patient/ or user/ context) are
    left out of the grant, as OAuth allows, and the response's `scope` says what was granted.
    """
    return [s for s in dict.fromkeys(requested.split()) if _READ_SCOPE.fullmatch(s)]


class AssertionChecker:
    """Checks client assertions, and remembers each accepted `jti` until its assertion expires."""

    def __init__(self, clients: Mapping[str, Client], clock: Callable[[], float]) -> None:
        self._clients = clients
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}  # (client id, jti) -> exp

    def check(self, assertion: str, token_url: str) -> str:
        """The client id the assertion authenticates; raises OAuthError("invalid_client")."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except PyJWTError:
            raise _invalid("client_assertion is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise _invalid(f"the assertion must be signed {' or '.join(ALGORITHMS)}")
        issuer = unverified.get("iss")
        client = self._clients.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise _invalid("iss is not a registered client id")
        kid = header.get("kid")
        keys = client.keys_for(algorithm, kid if isinstance(kid, str) else None)
        if not keys:
            raise _invalid(f"no {algorithm} key of this client has that kid")
        claims = self._verified(assertion, algorithm, [k.key for k in keys], token_url)
        self._check_claims(client, claims)
        return client.client_id

    def _verified(
        self, assertion: str, algorithm: str, keys: list[Any], token_url: str
    ) -> dict[str, Any]:
        """The claims, once one of `keys` verifies the signature and `aud` is the token URL."""
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    assertion, key, algorithms=[algorithm], audience=token_url,
                    # Times are checked below with this authority's clock (one clock for all).
                    options={"require": REQUIRED_CLAIMS, "verify_exp": False,
                             "verify_nbf": False, "verify_iat": False},
                )  # fmt: skip
            except InvalidSignatureError:
                continue
            except InvalidAudienceError:
                raise _invalid(f"aud must be the token endpoint, {token_url}") from None
            except PyJWTError as exc:
                raise _invalid(_reason(exc)) from None
            return claims
        raise _invalid("the signature does not verify with any key registered for this client")

    def _check_claims(self, client: Client, claims: dict[str, Any]) -> None:
        now = self._clock()
        if claims["sub"] != client.client_id:
            raise _invalid("sub must be the client id, as iss is")
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _invalid("exp must be a number of seconds since the epoch")
        if exp <= now:
            raise _invalid("the assertion has expired (exp is past)")
        if exp > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
            raise _invalid(f"exp must be at most {MAX_ASSERTION_SECONDS} seconds ahead")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise _invalid("jti must be a non-empty string")
        for seen in [k for k, until in self._seen.items() if until <= now]:
            del self._seen[seen]  # expired assertions cannot be replayed: forget their jti
        if (client.client_id, jti) in self._seen:
            raise _invalid("this jti was used before: every assertion needs a fresh one")
        self._seen[(client.client_id, jti)] = float(exp)


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


def _reason(exc: PyJWTError) -> str:
    """A description of a JWT that did not decode: PyJWT's own words, which name the claim or
    the step that failed, never the token's content."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"the assertion was refused: {text}"
