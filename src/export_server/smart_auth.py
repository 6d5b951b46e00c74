"""SMART Backend Services for the FHIR routes: discovery, the token endpoint, and bearer checks.

`SmartAuthority.routes()` serves `GET /fhir/.well-known/smart-configuration` and
`POST /fhir/auth/token`; a FHIR route calls `authorize(request)` first and returns what it gives
when that is not None (a 401 OperationOutcome). The client assertion's rules are in
`smart_assertions`; this module owns the HTTP side and the tokens.

Tokens are opaque random strings held in this process's memory with their expiry (the server
serves HTTP from one process): nothing to forge or decode, and a restart forgets them, as it
forgets export jobs. Neither a token nor an assertion is ever logged or put in a message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from export_server.smart_assertions import (
    ALGORITHMS,
    AssertionChecker,
    OAuthError,
    granted_scopes,
)

if TYPE_CHECKING:
    from export_server.smart_clients import Client

TOKEN_SECONDS = 300  # SMART: "expires_in ... recommended value is 300"; never more here
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_FORM_BYTES = 64 * 1024  # an assertion is a few hundred bytes; refuse to buffer more
FHIR_JSON = "application/fhir+json"
SCOPES_SUPPORTED = [
    f"system/{kind}.{permission}"
    for kind in ("*", "Patient", "Observation", "Group")
    for permission in ("read", "rs")
]


@dataclass(frozen=True)
class _Grant:
    client_id: str
    scope: str
    expires_at: float


class SmartAuthority:
    """Issues bearer tokens to registered clients, and checks them on FHIR requests.

    `clock` gives the time in seconds since the epoch (injected by tests); `base` is the FHIR
    base path the discovery document and the token endpoint live under.
    """

    def __init__(
        self,
        clients: Mapping[str, Client],
        clock: Callable[[], float] = time.time,
        base: str = "/fhir",
        token_seconds: int = TOKEN_SECONDS,
    ) -> None:
        self._clock = clock
        self._base = base.rstrip("/")
        self._token_seconds = min(token_seconds, TOKEN_SECONDS)
        self._checker = AssertionChecker(clients, clock)
        self._grants: dict[str, _Grant] = {}

    @property
    def token_path(self) -> str:
        return f"{self._base}/auth/token"

    def token_url(self, request: Request) -> str:
        """The token endpoint's absolute URL as this request reached the server: the `aud` an
        assertion sent here must carry."""
        return str(request.base_url).rstrip("/") + self.token_path

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{self._base}/.well-known/smart-configuration", self._configuration,
                  methods=["GET"]),
            Route(self.token_path, self._token, methods=["POST"]),
        ]  # fmt: skip

    async def _configuration(self, request: Request) -> Response:
        return JSONResponse(
            {
                "token_endpoint": self.token_url(request),
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
                "grant_types_supported": ["client_credentials"],
                "scopes_supported": SCOPES_SUPPORTED,
                # Both scope syntaxes are accepted: v1 `system/*.read`, v2 `system/*.rs`.
                "capabilities": [
                    "client-confidential-asymmetric",
                    "permission-v1",
                    "permission-v2",
                ],
            }
        )

    async def _token(self, request: Request) -> Response:
        try:
            form = await _read_form(request)
            grant = self._grant(form, self.token_url(request))
        except OAuthError as exc:
            return _oauth_error(exc)
        token = secrets.token_urlsafe(32)
        self._forget_expired()
        self._grants[token] = grant
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self._token_seconds,
            "scope": grant.scope,
        }
        # RFC 6749 5.1: a response holding a token must not be cached.
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _grant(self, form: dict[str, str], token_url: str) -> _Grant:
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is missing")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_client", "client_assertion is missing")
        client_id = self._checker.check(assertion, token_url)  # authenticated before all else
        scope = form.get("scope")
        if not scope:
            raise OAuthError("invalid_scope", "scope is missing")
        granted = granted_scopes(scope)
        if not granted:
            supported = " ".join(SCOPES_SUPPORTED)
            raise OAuthError(
                "invalid_scope", f"none of the scopes asked for is offered: {supported}"
            )
        return _Grant(client_id, " ".join(granted), self._clock() + self._token_seconds)

    def _forget_expired(self) -> None:
        now = self._clock()
        for token in [t for t, g in self._grants.items() if g.expires_at <= now]:
            del self._grants[token]

    def authorize(self, request: Request) -> Response | None:
        """None when the request carries a valid, unexpired bearer token (its client id is then
        `request.state.smart_client_id`); else the 401 OperationOutcome to answer with."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("no access token: get one from the token endpoint", None)
        grant = self._grants.get(token)
        if grant is None:
            return _unauthorized("the access token is not valid", "invalid_token")
        if grant.expires_at <= self._clock():
            del self._grants[token]
            return _unauthorized("the access token has expired", "invalid_token")
        request.state.smart_client_id = grant.client_id
        return None


async def _read_form(request: Request) -> dict[str, str]:
    """The token request's form fields (the last of each name), without buffering a large body.

    Parsed here rather than by `request.form()`, which needs python-multipart for nothing
    this endpoint accepts.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", f"the body is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the body is not URL-encoded ASCII") from None
    return {name: values[-1] for name, values in fields.items()}


def _oauth_error(exc: OAuthError) -> Response:
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, 400, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _unauthorized(diagnostics: str, error: str | None) -> Response:
    """RFC 6750's 401: `WWW-Authenticate: Bearer`, with `error` when a token was presented;
    the body a FHIR OperationOutcome."""
    challenge = 'Bearer realm="fhir"'
    if error is not None:
        challenge += f', error="{error}", error_description="{diagnostics}"'
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": diagnostics}],
    }
    return JSONResponse(outcome, 401, headers={"WWW-Authenticate": challenge}, media_type=FHIR_JSON)
