"""--client-id, --private-key and --scope resolved into Settings: both or neither, the key read and
checked when the flags are, never shown, and the JWT library imported only when they are given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from export_tally.cli.exitcodes import ExitCode
from export_tally.cli.settings import parse
from export_tally.errors import SmartKeyError, UsageError
from export_tally.render.report.facts import shown_options
from tests.support.cli_run import one_line, run_cli
from tests.support.smart_keys import TestClientKey, ec_client, rsa_client


@pytest.fixture(scope="module")
def rsa() -> TestClientKey:
    return rsa_client()


@pytest.fixture
def pem_file(rsa: TestClientKey, tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(rsa.pem())
    return path


def test_client_id_and_key_resolve_to_credentials(pem_file: Path, rsa: TestClientKey) -> None:
    resolved = parse(["demo", "--client-id", "bulk-rsa", "--private-key", str(pem_file)], {})
    credentials = resolved.smart_credentials
    assert credentials is not None
    assert (credentials.client_id, credentials.algorithm, credentials.scope) == (
        "bulk-rsa", "RS384", None,
    )  # fmt: skip
    assert resolved.headers == ()  # the tokens are the client's business, not a fixed header
    # The key is nowhere in what can be printed: the settings, the options a report shows.
    pem_body = b"".join(rsa.pem().splitlines()[1:-1]).decode()
    assert pem_body[:40] not in repr(resolved)
    assert "key=<redacted>" in repr(resolved)
    shown = shown_options(resolved.given)
    assert shown == ("--client-id bulk-rsa", "--private-key (given, not shown)")


def test_a_jwk_set_and_a_scope(tmp_path: Path) -> None:
    client = ec_client()
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [client.private_jwk()]}))
    argv = ["demo", "--client-id", "bulk-ec", "--private-key", str(path),
            "--scope", "system/Observation.rs system/Patient.rs"]  # fmt: skip
    credentials = parse(argv, {}).smart_credentials
    assert credentials is not None
    assert (credentials.algorithm, credentials.kid) == ("ES384", "ec-1")
    assert credentials.scope == "system/Observation.rs system/Patient.rs"


@pytest.mark.parametrize(
    ("extra", "environ", "message"),
    [
        pytest.param(["--client-id", "c"], {}, "--client-id needs --private-key", id="id-only"),
        pytest.param(["--private-key", "KEY"], {}, "--private-key needs --client-id", id="key-only"),
        pytest.param(["--scope", "system/*.read"], {}, "--scope needs --client-id", id="scope-only"),
        pytest.param(["--client-id", "c", "--private-key", "KEY", "--token", "t"], {},
                     "--client-id gets its own access tokens: drop --token", id="token"),
        pytest.param(["--client-id", "c", "--private-key", "KEY"], {"EXPORT_SERVER_TOKEN": "t"},
                     "--client-id gets its own access tokens: unset $EXPORT_SERVER_TOKEN",
                     id="token-variable"),
        pytest.param(["--client-id", "c", "--private-key", "KEY", "--header", "authorization: x"],
                     {}, "--client-id gets its own access tokens: drop --header", id="header"),
        pytest.param(["--client-id", "c\x1b[2J", "--private-key", "KEY"], {},
                     "--client-id must be printable ASCII", id="client-id"),
        pytest.param(["--client-id", "c", "--private-key", "KEY", "--scope", "a  b"], {},
                     "--scope 'a  b' is not a list of scopes", id="scope-spaces"),
        pytest.param(["--client-id", "c", "--private-key", "KEY", "--scope", 'a"b'], {},
                     "--scope 'a\"b' is not a list of scopes", id="scope-quote"),
        pytest.param(["--client-id", "c", "--private-key", "/no/such/key.pem"], {},
                     "--private-key /no/such/key.pem: cannot read it", id="no-key-file"),
    ],
)  # fmt: skip
def test_every_mistake_is_a_usage_error(
    extra: list[str], environ: dict[str, str], message: str, pem_file: Path
) -> None:
    argv = ["demo", *(str(pem_file) if word == "KEY" else word for word in extra)]
    with pytest.raises(UsageError) as caught:
        parse(argv, environ)
    assert str(caught.value).startswith(message), caught.value


def test_a_bad_key_is_exit_2_before_any_request(tmp_path: Path) -> None:
    """Nothing answers at the server named (port 9 on loopback: discard): the key is refused
    first, in one line naming the file, and no bundled server is started for it."""
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    outcome = run_cli("demo", "--server", "http://127.0.0.1:9", "--client-id", "c",
                      "--private-key", str(key))  # fmt: skip
    assert outcome.status == ExitCode.USAGE
    assert one_line(outcome.stderr) == (
        f"cli: error: --private-key {key}: not a private key (JWK set or PEM)"
    )
    assert outcome.stdout == ""


def test_a_public_key_is_refused(tmp_path: Path, rsa: TestClientKey) -> None:
    path = tmp_path / "public.json"
    path.write_text(json.dumps({"keys": [rsa.public_jwk()]}))
    with pytest.raises(SmartKeyError, match="no private RSA"):
        parse(["demo", "--client-id", "c", "--private-key", str(path)], {})


def _imports_jwt(argv: list[str]) -> bool:
    code = (
        "import sys; from export_tally.cli.settings import parse; "
        f"parse({argv!r}, {{}}); print('jwt' in sys.modules, 'cryptography' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    answer = done.stdout.split()
    assert answer[0] == answer[1], done.stdout  # PyJWT and cryptography come together
    return answer[0] == "True"


def test_the_jwt_library_is_imported_only_with_a_private_key(pem_file: Path) -> None:
    assert not _imports_jwt(["demo"])
    assert _imports_jwt(["demo", "--client-id", "c", "--private-key", str(pem_file)])
