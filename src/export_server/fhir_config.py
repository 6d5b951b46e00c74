"""The FHIR routes' settings and their command-line options (`server --help`, "FHIR Bulk Data")."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from export_server.dataset import EXPORTS


@dataclass(frozen=True)
class FhirConfig:
    """`hold`: the least seconds a job runs; `poll_seconds`: the Retry-After of a running job's
    status (and of a 429); `rate_limit`: answer 429 to a status poll sooner than that, and to a
    kick-off while a job runs; `population`: the export that `/fhir/Patient/$export` and
    `/fhir/$export` export; `converters`: processes making NDJSON."""

    hold: float = 0.0
    poll_seconds: int = 1
    rate_limit: bool = False
    population: str = "demo"
    converters: int = 2


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is less than 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("FHIR Bulk Data (under /fhir)")
    group.add_argument(
        "--fhir-hold",
        type=_seconds,
        default=0,
        metavar="SECONDS",
        help="report every export job as running for at least this long (default: 0)",
    )
    group.add_argument(
        "--fhir-poll-after",
        type=_seconds,
        default=1,
        metavar="SECONDS",
        help="the Retry-After of a running job's status, and of a 429 (default: 1)",
    )
    group.add_argument(
        "--fhir-rate-limit",
        action="store_true",
        help="answer 429 to a status poll sooner than --fhir-poll-after, and to a second kick-off "
        "while a job runs",
    )
    group.add_argument(
        "--fhir-population", choices=list(EXPORTS), default="demo", metavar="EXPORT",
        help="the export behind /fhir/Patient/$export and /fhir/$export (default: demo)",
    )  # fmt: skip


def config_from(args: argparse.Namespace, converters: int) -> FhirConfig:
    """The settings the parsed options say; `converters` NDJSON processes."""
    return FhirConfig(
        hold=args.fhir_hold, poll_seconds=args.fhir_poll_after, rate_limit=args.fhir_rate_limit,
        population=args.fhir_population, converters=converters,
    )  # fmt: skip
