"""SMART Backend Services for the FHIR source: bearer tokens got, kept, and renewed in time.

`SmartTokens(credentials, fhir_base_url)` reads the token endpoint from
`BASE/.well-known/smart-configuration` on first use, signs a client assertion (`iss` = `sub` =
the client id, `aud` = the token URL, `exp` 300 s ahead, a fresh random `jti`, the key's `kid` in
the header), asks for `client_credentials` with the scope, and keeps the token until less than
RENEW_SECONDS of it are left. `SmartAuth` (an httpx auth) puts the token on every request and,
after a 401, gets a new one and tries once more.

Each process builds its own `SmartTokens` from the picklable `SmartCredentials`, so every worker
holds its own token. A token endpoint (or smart-configuration) that cannot be reached, or answers
429 or 5xx, is an outage of the request that needed the token (SmartEndpointDownError): the
retrying loop waits it out as it waits out the FHIR server's own. The token and the assertion
are never logged or put in a message: a refusal shows the server's OAuth `error` and
`error_description` only.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import httpx
import jwt

# The credentials are read by smart_credentials.py (at the edge, with the flags); this module
# only uses them, so that a client's import chain stays short (tests/unit/test_layering.py).
from export_tally.errors import SmartDiscoveryError, SmartUnreachableError, TokenRefusedError
from export_tally.transport.retry import describe, is_outage_error
from export_tally.transport.shared_terms import redact_url

if TYPE_CHECKING:
    from export_tally.transport.smart_credentials import SmartCredentials

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 300  # SMART: exp "no more than five minutes in the future"
RENEW_SECONDS = 60  # renew a token when less than this is left of it
# SMART v1's read scope: v1 servers know only it, and v2 servers accept it (they advertise
# `permission-v1`); a server that advertises `permission-v2` alone is asked for v2's `.rs`.
V1_SCOPE = "system/*.read"
V2_SCOPE = "system/*.rs"
MAX_SHOWN = 200  # characters of a server's error_description a message shows


class SmartTokens:
    """This process's access token for one FHIR server, renewed when it is about to expire.

    `clock` measures how long a token has been held (monotonic: a change of the wall clock
    does not age a token; tests inject one); the assertion's `exp` is wall time, as the server
    reads it. Thread-safe: Dask runs tasks in threads, and only one of them renews at a time.
    """

    def __init__(
        self,
        credentials: SmartCredentials,
        fhir_base_url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.base_url = fhir_base_url.rstrip("/")
        self._clock = clock
        self._lock = threading.Lock()
        self._token_url: str | None = None
        self._scope: str | None = credentials.scope
        self._token: str | None = None
        self._renew_at = 0.0
        self.obtained = 0  # tokens got so far (the tests watch renewals through it)

    def __repr__(self) -> str:
        return f"SmartTokens({self.credentials!r}, {redact_url(self.base_url)!r})"

    def access_token(self, client: httpx.Client) -> str:
        """A token with at least RENEW_SECONDS left (or half its life, for short ones)."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = self._new_token(client)
            return self._token

    def forget(self) -> None:
        """Drop the token (the server refused it): the next request gets a new one."""
        with self._lock:
            self._token = None

    def _discover(self, client: httpx.Client) -> str:
        url = f"{self.base_url}/.well-known/smart-configuration"
        where = redact_url(url)
        response = _send(client, "GET", url, headers={"Accept": "application/json"})
        document = _json(response) if response.status_code == 200 else None
        endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            status = f"HTTP {response.status_code}"
            raise SmartDiscoveryError(
                f"{where}: no SMART configuration with a token_endpoint ({status}); "
                "does this server use SMART Backend Services?"
            )
        if self._scope is None:
            capabilities = document.get("capabilities") if isinstance(document, dict) else None
            v2_only = isinstance(capabilities, list) and "permission-v2" in capabilities
            v2_only = v2_only and "permission-v1" not in capabilities  # type: ignore[operator]
            self._scope = V2_SCOPE if v2_only else V1_SCOPE
        return endpoint

    def _new_token(self, client: httpx.Client) -> str:
        if self._token_url is None:
            self._token_url = self._discover(client)
        assert self._scope is not None  # chosen by _discover
        form = {
            "grant_type": "client_credentials",
            "scope": self._scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(self._token_url),
        }
        asked_at = self._clock()
        response = _send(client, "POST", self._token_url, data=form)
        body = _json(response)
        where = redact_url(self._token_url)
        if response.status_code != 200:
            raise TokenRefusedError(
                f"the token endpoint {where} refused client {self.credentials.client_id!r} "
                f"(HTTP {response.status_code}): {_oauth_error(body, form['client_assertion'])}"
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        lifetime = body.get("expires_in", ASSERTION_SECONDS) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
            raise SmartDiscoveryError(f"{where}: the token answer has no access_token/expires_in")
        # Renew with a minute to spare; a token shorter than two minutes, at half its life.
        self._renew_at = asked_at + max(lifetime - RENEW_SECONDS, lifetime / 2)
        self.obtained += 1
        return token

    def _assertion(self, token_url: str) -> str:
        now = int(time.time())
        client_id = self.credentials.client_id
        claims = {"iss": client_id, "sub": client_id, "aud": token_url,
                  "exp": now + ASSERTION_SECONDS, "jti": secrets.token_urlsafe(24)}  # fmt: skip
        headers = {"kid": self.credentials.kid, "typ": "JWT"}
        key = self.credentials.signing_key()
        return jwt.encode(claims, key, algorithm=self.credentials.algorithm, headers=headers)


class SmartAuth(httpx.Auth):
    """An httpx auth: `Authorization: Bearer TOKEN` on every request; one retry after a 401
    with a new token (a server may end a token early, e.g. after a restart).

    Token requests go through `token_client` (same TLS and timeouts as the rest, without auth).
    """

    def __init__(self, tokens: SmartTokens, token_client: httpx.Client) -> None:
        self.tokens = tokens
        self.token_client = token_client

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self.tokens.access_token(self.token_client)}"
        response = yield request
        if response.status_code == 401:
            self.tokens.forget()
            token = self.tokens.access_token(self.token_client)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


class SmartEndpointDownError(httpx.NetworkError):
    """The smart-configuration or the token endpoint cannot be reached, or answers 429 or 5xx.

    An httpx transport error on purpose: raised while a request is being sent (its auth asks
    for a token), it is an outage of that request to the retrying loop (driver.py), which waits
    it out within --max-outage as it does the FHIR server's own, then says so (exit 3).
    """


def _send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        # httpx's message names the failure (refused, timed out), never the request's body.
        if is_outage_error(exc):
            raise SmartEndpointDownError(
                f"getting an access token from {redact_url(url)}: {describe(exc)}"
            ) from exc
        raise SmartUnreachableError(f"{redact_url(url)}: {type(exc).__name__}: {exc}") from None
    if response.status_code == 429 or response.status_code >= 500:
        # Busy or down for now, not a refusal of the client: try again, as after an outage.
        response.read()
        raise SmartEndpointDownError(
            f"getting an access token: {redact_url(url)} answered HTTP {response.status_code}"
        )
    return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _oauth_error(body: Any, assertion: str) -> str:
    """`error: error_description` of an OAuth error answer, one line, the assertion cut out in
    case a server echoes it."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return "no OAuth error in the answer"
    description = body.get("error_description")
    text = body["error"] + (f": {description}" if isinstance(description, str) else "")
    text = " ".join(text.replace(assertion, "<assertion>").split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."
