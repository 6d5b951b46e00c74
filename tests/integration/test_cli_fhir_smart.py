"""`cli --fhir BASE_URL GROUP --client-id ID --private-key FILE` against the real server started
with `--fhir-clients`, over real sockets: demo exact with every key form, nothing secret in what
the run writes, and each refused credential one line with its documented exit code.

One server for the module (its clients' keys made at test time, tests/support/smart_server.py).
The secrets looked for: the key file's own strings (each PEM body line, each private JWK member),
anything shaped like a signed JWT (the client assertions: `eyJ...` header and claims), and the
access tokens the run got (opaque strings, not JWTs: recorded by wrapping
`SmartTokens.access_token`, which still does all the work). The token endpoint's own rules are
in test_smart_auth.py, the FHIR routes behind it in test_fhir_smart_export.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.transport.smart import SmartTokens
from tests.support.cli_run import Outcome, one_line, run_cli
from tests.support.servers import Reaper, RunningServer
from tests.support.smart_keys import TestClientKey, rsa_client
from tests.support.smart_server import SmartServer, running_smart_server

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "demo.json").read_text()
# A signed JWT: base64url of '{"' starts both its header and its claims.
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")  # RFC 7518: a JWK's private parts


@pytest.fixture(scope="module")
def smart_server(
    tmp_path_factory: pytest.TempPathFactory, reaper: Reaper, warm_server: RunningServer,
    server_cache_dir: Path,
) -> Iterator[SmartServer]:  # fmt: skip
    """On the session's cache, warm for demo (`warm_server`)."""
    directory = tmp_path_factory.mktemp("cli-smart")
    args = ["--workers", "1"]
    with running_smart_server(directory, reaper, args, cache_dir=server_cache_dir) as server:
        yield server


@pytest.fixture
def tokens_got(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The access tokens this process's runs got from the token endpoint, as they got them."""
    got: list[str] = []
    real = SmartTokens.access_token

    def recorded(self: SmartTokens, client: httpx.Client) -> str:
        token = real(self, client)
        got.append(token)
        return token

    monkeypatch.setattr(SmartTokens, "access_token", recorded)
    return got


def key_file(directory: Path, client: TestClientKey, form: str) -> Path:
    """`client`'s private key written as a JWK set, one JWK, or PKCS#8 PEM."""
    path = directory / f"{client.client_id}.{form}"
    if form == "jwks":
        path.write_text(json.dumps({"keys": [client.private_jwk()]}))
    elif form == "jwk":
        path.write_text(json.dumps(client.private_jwk()))
    else:
        path.write_bytes(client.pem())
    return path


def key_strings(client: TestClientKey) -> list[str]:
    """What of `client`'s private key could show up as text: its JWK's private members and each
    line of its PEM body."""
    jwk = client.private_jwk()
    members = [jwk[name] for name in PRIVATE_MEMBERS if name in jwk]
    return members + client.pem().decode().splitlines()[1:-1]


def assert_nothing_secret(written: str, client: TestClientKey, tokens: list[str]) -> None:
    """None of `client`'s key, no signed JWT and none of `tokens` in `written`."""
    leaked = [s for s in key_strings(client) if s in written]
    assert not leaked, f"the private key shows: {leaked[0][:12]}..."
    assert not JWT.search(written), "a signed JWT (an assertion?) shows"
    assert not [t for t in tokens if t in written], "an access token shows"


def smart_run(server: SmartServer, key: Path, client_id: str, *argv: str) -> Outcome:
    return run_cli("--fhir", server.fhir, "demo", "--key", "text", "--client-id", client_id,
                   "--private-key", str(key), *argv)  # fmt: skip


def test_demo_with_an_rs384_jwk_set_is_exact_and_shows_no_secret(
    smart_server: SmartServer, tokens_got: list[str], tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """stdout, stderr (the run's and the process's own), the `--report` page and the checkpoints
    kept hold no key, assertion or token."""
    client = smart_server.rsa
    report, checkpoints = tmp_path / "r.html", tmp_path / "ck"
    outcome = smart_run(smart_server, key_file(tmp_path, client, "jwks"), client.client_id,
                        "--report", str(report), "--checkpoint-dir", str(checkpoints))  # fmt: skip
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == DEMO
    assert "--private-key (given, not shown)" in report.read_text()
    assert tokens_got  # the run got its token here: it is looked for
    process = capfd.readouterr()
    texts = [outcome.stdout, outcome.stderr, process.out, process.err, report.read_text()]
    texts += kept_files(checkpoints)
    assert_nothing_secret("\n".join(texts), client, tokens_got)


def kept_files(directory: Path) -> list[str]:
    """Every file under `directory` (checkpoints: any bytes), as text."""
    kept = [path.read_bytes().decode("latin-1") for path in directory.rglob("*") if path.is_file()]
    assert kept, f"nothing was written under {directory}"
    return kept


@pytest.mark.slow
def test_an_output_file_and_its_report_show_no_secret(
    smart_server: SmartServer, tokens_got: list[str], tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The same with an ES384 key and `-o`: the counts in the file, nothing secret anywhere."""
    client = smart_server.ec
    output, report, checkpoints = tmp_path / "out.json", tmp_path / "r.html", tmp_path / "ck"
    outcome = smart_run(smart_server, key_file(tmp_path, client, "jwks"), client.client_id,
                        "-o", str(output), "--report", str(report), "--checkpoint-dir",
                        str(checkpoints))  # fmt: skip
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert (outcome.stdout, output.read_text()) == ("", DEMO)
    assert tokens_got
    process = capfd.readouterr()
    texts = [outcome.stderr, process.out, process.err, output.read_text(), report.read_text()]
    texts += kept_files(checkpoints)
    assert_nothing_secret("\n".join(texts), client, tokens_got)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "form"),
    [("rsa", "pem"), ("ec", "jwks"), ("ec", "pem"), ("ec", "jwk")],
    ids=["RS384-PEM", "ES384-JWK-set", "ES384-PEM", "ES384-one-JWK"],
)
def test_demo_with_every_other_key_form_is_exact(
    smart_server: SmartServer, tokens_got: list[str], tmp_path: Path,
    capfd: pytest.CaptureFixture[str], kind: str, form: str,
) -> None:  # fmt: skip
    client: TestClientKey = getattr(smart_server, kind)
    outcome = smart_run(smart_server, key_file(tmp_path, client, form), client.client_id)
    assert outcome.status == ExitCode.OK, outcome.stderr
    assert outcome.stdout == DEMO
    assert tokens_got
    process = capfd.readouterr()
    texts = [outcome.stdout, outcome.stderr, process.out, process.err]
    assert_nothing_secret("\n".join(texts), client, tokens_got)


def refused(server: SmartServer, client_id: str, reason: str) -> str:
    """The one line of a client the token endpoint refuses, up to the server's reason."""
    return (f"cli: error: the token endpoint {server.token_url} refused client '{client_id}' "
            f"(HTTP 400): {reason}")  # fmt: skip


def assert_refused_in_one_line(outcome: Outcome, status: ExitCode, start: str) -> None:
    assert outcome.status == status, outcome.stderr
    assert one_line(outcome.stderr).startswith(start), outcome.stderr
    assert outcome.stdout == ""


def test_a_key_the_server_does_not_know_for_the_client_is_exit_2(
    smart_server: SmartServer, tmp_path: Path
) -> None:
    """Another RSA key under the client's registered id and kid: the signature is what fails.
    No `-o` file is left behind, and the stranger's key does not show."""
    stranger = rsa_client(smart_server.rsa.client_id, smart_server.rsa.kid)
    output = tmp_path / "out.json"
    outcome = smart_run(smart_server, key_file(tmp_path, stranger, "jwks"), stranger.client_id,
                        "-o", str(output))  # fmt: skip
    reason = "invalid_client: the signature does not verify with any key registered for this client"
    assert_refused_in_one_line(outcome, ExitCode.USAGE, refused(smart_server, "bulk-rsa", reason))
    assert not output.exists()
    assert_nothing_secret(outcome.stderr, stranger, [])


# case -> (a stranger's key, else the registered one; the client id, None for the key's own; the
# flags added; what the server says)
REFUSALS: dict[str, tuple[bool, str | None, list[str], str]] = {
    # A PEM key has no `kid`: its thumbprint names it, and no registered key answers to that.
    "unknown PEM key": (True, None, [], "invalid_client: no RS384 key of this client has that kid"),
    "unknown client id": (False, "nobody", [], "invalid_client: iss is not a registered client id"),
    "refused scope": (False, None, ["--scope", "system/*.write patient/*.read"],
                      "invalid_scope: none of the scopes asked for is offered"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", REFUSALS)
def test_other_refused_credentials_are_exit_2(
    smart_server: SmartServer, tmp_path: Path, case: str
) -> None:
    stranger, client_id, flags, reason = REFUSALS[case]
    client = rsa_client(smart_server.rsa.client_id) if stranger else smart_server.rsa
    client_id = client_id or client.client_id
    output = tmp_path / "out.json"
    outcome = smart_run(smart_server, key_file(tmp_path, client, "pem"), client_id, "-o",
                        str(output), *flags)  # fmt: skip
    assert_refused_in_one_line(outcome, ExitCode.USAGE, refused(smart_server, client_id, reason))
    assert not output.exists()
    assert_nothing_secret(outcome.stderr, client, [])


@pytest.mark.slow
def test_no_credentials_for_a_server_that_requires_them_is_exit_3(
    smart_server: SmartServer, tmp_path: Path
) -> None:
    output = tmp_path / "out.json"
    outcome = run_cli("--fhir", smart_server.fhir, "demo", "--key", "text", "-o", str(output))
    assert_refused_in_one_line(outcome, ExitCode.UNREACHABLE, "cli: error: GET ")
    assert "the server refused the credentials (HTTP 401)" in outcome.stderr
    assert not output.exists()
