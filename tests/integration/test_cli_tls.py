"""https:// servers: our own server with a certificate from a private CA (trustme)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from export_tally.cli.exitcodes import ExitCode
from tests.support.cli_run import run_cli
from tests.support.servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tls_server(
    start_server: Callable[..., RunningServer], tmp_path: Path
) -> tuple[RunningServer, Path]:
    """Our server on https://, and the file of the CA that signed its certificate."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert))
    certificate.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    running = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    assert running.url.startswith("https://")
    return running, ca


@pytest.mark.slow
def test_private_ca_is_trusted_with_cacert(tls_server: tuple[RunningServer, Path]) -> None:
    running, ca = tls_server
    outcome = run_cli("demo", "--server", running.url, "--cacert", str(ca))
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == (ROOT / "demo.json").read_text()


@pytest.mark.slow
def test_untrusted_certificate_is_refused_with_advice(
    tls_server: tuple[RunningServer, Path],
) -> None:
    running, _ = tls_server
    outcome = run_cli("demo", "--server", running.url)
    assert outcome.status == ExitCode.UNREACHABLE
    message = outcome.stderr.strip()
    assert "TLS certificate is not trusted" in message and "--cacert" in message


@pytest.mark.slow
def test_insecure_works_and_warns(tls_server: tuple[RunningServer, Path]) -> None:
    running, _ = tls_server
    outcome = run_cli("demo", "--server", running.url, "--insecure")
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert "warning: --insecure" in outcome.stderr


def test_server_refuses_half_a_tls_configuration(
    start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="go together"):
        start_server("--tls-cert", str(tmp_path / "cert.pem"))
