"""The FHIR routes' options: defaults, the settings they make, and exit 2 for bad values."""

from __future__ import annotations

import pytest

from export_server.fhir_config import FhirConfig, config_from
from export_server.options import parse_args


def test_defaults_make_the_default_settings() -> None:
    assert config_from(parse_args([]), converters=2) == FhirConfig()


def test_flags_make_their_settings() -> None:
    argv = ["--fhir-hold", "5", "--fhir-poll-after", "0", "--fhir-rate-limit",
            "--fhir-population", "small"]  # fmt: skip
    assert config_from(parse_args(argv), converters=3) == FhirConfig(
        hold=5, poll_seconds=0, rate_limit=True, population="small", converters=3
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fhir-hold", "-1"], "less than 0"),
        (["--fhir-poll-after", "soon"], "not a whole number of seconds"),
        (["--fhir-population", "huge"], "invalid choice"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]
