"""What the FHIR routes need of an authorization server (SMART Backend Services, optional).

The routes depend on this protocol only, not on any implementation of it: an authority decides
whether a request may go on, and brings its own routes (its discovery document and token
endpoint).
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute


class SmartAuthority(Protocol):
    def authorize(self, request: Request) -> Response | None:
        """None if the request may go on; else the answer to give (a 401 OperationOutcome).

        An authority that knows who the client is says so in `request.state.smart_client_id`
        (a str): `--fhir-rate-limit` then limits each client's running jobs apart.
        """
        ...

    def routes(self) -> list[BaseRoute]:
        """`/fhir/.well-known/smart-configuration` and the token endpoint it names."""
        ...
