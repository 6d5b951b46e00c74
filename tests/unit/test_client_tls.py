"""The HTTP client's TLS set-up: the system's CA bundle is loaded only where TLS may be used."""

from __future__ import annotations

import ssl

import pytest

from export_tally.transport.client import ClientOptions, _ssl_context


@pytest.mark.parametrize(
    ("options", "bare"),
    [
        (ClientOptions("http://127.0.0.1:8000"), True),
        (ClientOptions("http://localhost:8000"), True),
        (ClientOptions("http://[::1]:8000"), True),
        (ClientOptions("https://127.0.0.1:8000"), False),
        (ClientOptions("http://exports.example:8000"), False),  # a proxy may be https
        (ClientOptions("http://127.0.0.1:8000", redirects_anywhere=True), False),
    ],
    ids=["loopback", "localhost", "ipv6-loopback", "https", "remote", "redirects-anywhere"],
)
def test_only_a_client_that_never_uses_tls_skips_the_ca_bundle(
    options: ClientOptions, bare: bool
) -> None:
    context = _ssl_context(options)
    if bare:
        assert isinstance(context, ssl.SSLContext)
        assert context.cert_store_stats()["x509_ca"] == 0  # verifies nothing: refuses all
        assert context.verify_mode == ssl.CERT_REQUIRED
    else:
        assert context is True  # httpx's default: the system's CAs


def test_insecure_and_a_ca_file_are_kept() -> None:
    assert _ssl_context(ClientOptions("http://127.0.0.1:1", verify=False)) is False
