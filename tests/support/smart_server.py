"""The real server behind SMART Backend Services (`--fhir-clients`), for tests: its clients'
keys made at test time, a token request, and bearer headers that stay fresh."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import Reaper, RunningServer, running_server
from tests.support.smart_keys import (
    TestClientKey,
    ec_client,
    rsa_client,
    token_form,
    write_clients_file,
)


@dataclass
class SmartServer:
    """A server started with `--fhir-clients`, and the two clients its file registers."""

    server: RunningServer
    rsa: TestClientKey
    ec: TestClientKey
    key_dir: Path

    @property
    def fhir(self) -> str:
        return f"{self.server.url}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.fhir}/auth/token"

    def ask(self, form: dict[str, str]) -> httpx.Response:
        """POST a token request's form to the token endpoint."""
        return httpx.post(self.token_url, data=form)

    def token(self, client: TestClientKey | None = None) -> tuple[str, float]:
        """A new access token for `client` (default: the RSA one, a fresh RS384 assertion signed
        here), and how many seconds the server said it lives."""
        response = self.ask(token_form((client or self.rsa).assertion(self.token_url)))
        assert response.status_code == 200, response.text
        body = response.json()
        return body["access_token"], float(body["expires_in"])


class Bearer:
    """`Authorization: Bearer` headers for `client` (default: the RSA one) from `server`'s token
    endpoint; a new token once half the
    last one's life is gone by this process's clock (started before the token was asked for),
    so a request never carries a token about to expire."""

    def __init__(self, server: SmartServer, client: TestClientKey | None = None) -> None:
        self.server = server
        self.client = client
        self._token = ""
        self._renew_at = 0.0

    def headers(self) -> dict[str, str]:
        now = time.monotonic()
        if now >= self._renew_at:
            self._token, lifetime = self.server.token(self.client)
            self._renew_at = now + lifetime / 2
        return {"Authorization": f"Bearer {self._token}"}


@contextmanager
def running_smart_server(
    directory: Path, reaper: Reaper, args: Sequence[str], cache_dir: Path | None = None
) -> Iterator[SmartServer]:
    """A server with `--fhir-clients` (an RSA and an EC client, their keys made now, the file
    written in `directory`) and `args`."""
    rsa, ec = rsa_client(), ec_client()
    clients = write_clients_file(directory / "clients.json", rsa, ec)
    command = ["--fhir-clients", str(clients), *args]
    with running_server(command, cache_dir=cache_dir, reaper=reaper) as server:
        yield SmartServer(server, rsa, ec, directory)
