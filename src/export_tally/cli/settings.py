"""argv and the environment, resolved once into `Settings`: the only place that reads either.

`parse` checks in the order a run always has (the export id, the output and report files, the
environment, the server, the headers, TLS), so that of several mistakes the same one is named
first as before, and `--version` answers whatever else the command line says.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from export_tally.cli.arguments import (
    DEFAULT_JOBS,
    DEFAULT_MAX_OUTAGE,
    DEFAULT_SERVER,
    build_parser,
    non_negative_int,
)
from export_tally.core.csv.split import DEFAULT_MIN_PART_BYTES
from export_tally.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from export_tally.core.csv.reader_path import BadRowMode
    from export_tally.core.ndjson.resources import KeyMode
    from export_tally.render.formats import Format
    from export_tally.transport.fhir_bulk import ExportRequest
    from export_tally.transport.smart_credentials import SmartCredentials

# An export declaring fewer rows than this is counted in the tool's own process, without starting
# worker processes. Starting a pool of fresh interpreters costs about 0.2 s on a 2-core machine
# (`demo` with a pool of 2 against in-process: 0.43 s against 0.21 s), which counting in two
# processes instead of one wins back after about 2 million rows there (`small`, 7 million rows:
# 2.6 s against 3.2 s); with more cores, sooner. The environment variable overrides it (0: always
# a pool; the tests use it to run both paths).
IN_PROCESS_ROWS = 1_000_000
IN_PROCESS_ROWS_VARIABLE = "EXPORT_TALLY_IN_PROCESS_ROWS"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# An export id used as a directory name as it is; any other is replaced by its hash.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
# RFC 6749: a client id is printable ASCII (VSCHAR), a scope space-separated tokens of NQCHAR
# but space; anything else would be refused by the token endpoint after the key was used.
_CLIENT_ID = re.compile(r"[\x20-\x7e]+")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*")


@dataclass(frozen=True)
class FhirChoices:
    """A FHIR Bulk Data run's choices (`--fhir`): what to export, how an Observation is keyed,
    and what becomes of the export job."""

    request: ExportRequest
    key: KeyMode = "code"
    keep_job: bool = False
    resume_job: str | None = None  # --resume-job: a status URL to poll instead of a kick-off


FHIR_ONLY = ("types", "since", "keep_job", "resume_job")  # flags that mean nothing without --fhir


@dataclass(frozen=True)
class Settings:
    """One run's choices, fully resolved. `Settings()` is a run with every default; with
    `version` set, nothing else was resolved (the run only prints the version)."""

    export_id: str | None = None
    version: bool = False
    debug: bool = False
    list_exports: bool = False
    # Where the answer goes, and how it looks.
    output: Path | None = None
    format: Format = "json"
    report: Path | None = None
    stats: bool = False
    precision: int = 1
    progress: bool | None = None  # None: shown when stderr is a terminal
    columns: int | None = None  # $COLUMNS, for a table not shown on a terminal
    no_color: bool = False  # $NO_COLOR
    # The server and how to talk to it.
    server_url: str = DEFAULT_SERVER
    server_explicit: bool = False  # chosen by the user: never replaced by the bundled server
    embedded_allowed: bool = True
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # credentials
    # --client-id and --private-key (and --scope), the key read and checked; its repr hides it.
    smart_credentials: SmartCredentials | None = None
    tls_verify: bool | str = True  # system CAs, not verified (--insecure), or a CA bundle's path
    insecure: bool = False
    follow_redirects_anywhere: bool = False
    timeout: float = 30.0
    retries: int = 5
    max_outage: float = DEFAULT_MAX_OUTAGE
    on_bad_row: BadRowMode = "fail"
    # Where and how the work runs.
    jobs: int = DEFAULT_JOBS
    scheduler: str | None = None
    in_process_rows: int = IN_PROCESS_ROWS
    min_part_bytes: int = DEFAULT_MIN_PART_BYTES
    # Finished work kept for a rerun.
    keep_checkpoints: bool = True
    checkpoint_dir: Path | None = None  # --checkpoint-dir; None: under checkpoint_root
    checkpoint_root: Path = Path("checkpoints")
    # A FHIR Bulk Data export (--fhir; `server_url` is then its base URL), else the export API.
    fhir: FhirChoices | None = None
    # The options given that differ from their defaults, in the parser's order, as (dest, value):
    # what a report says was chosen. Secrets among them are the report's to hide.
    given: tuple[tuple[str, object], ...] = field(default=(), repr=False)

    def checkpoint_place(self, server_identity: str) -> Path:
        """Where this run keeps finished work: --checkpoint-dir, else a directory per server and
        export under the user cache directory (`server_identity`: see cli.connect)."""
        if self.checkpoint_dir is not None:
            return self.checkpoint_dir
        server = hashlib.sha256(server_identity.encode()).hexdigest()[:16]
        export = self.export_id or ""
        if not _PLAIN_NAME.fullmatch(export):
            export = "export-" + hashlib.sha256(export.encode()).hexdigest()[:16]
        return self.checkpoint_root / server / export


def checkpoint_root() -> Path:
    """Where finished work is kept unless --checkpoint-dir says otherwise: the user cache
    directory (platformdirs; on Linux $XDG_CACHE_HOME, else ~/.cache)."""
    from platformdirs import user_cache_path

    return user_cache_path("export-tally") / "checkpoints"


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """The settings of the command line `argv` in the environment `environ`; UsageError (exit 2)
    for any mistake in either, and for an output or report file that could not be written."""
    root = checkpoint_root()
    parser = build_parser(root)
    args = parser.parse_args(list(argv))
    if args.version:
        return Settings(version=True, debug=args.debug)
    fhir = _fhir_choices(args)
    if not args.list and not args.export_id and fhir is None:
        raise UsageError("an export id is required (or --list to see them)")
    _check_files(args)
    in_process = _in_process_rows(environ)  # before the server: as a run always checked it
    url, explicit = (args.fhir.rstrip("/"), True) if fhir else _server_url(args, environ)
    headers = _extra_headers(args, environ)
    credentials = _smart_credentials(args, environ)
    columns = environ.get("COLUMNS", "")
    return Settings(
        export_id=args.export_id,
        debug=args.debug,
        list_exports=args.list,
        output=args.output,
        format=args.format,
        report=args.report,
        stats=args.stats,
        precision=args.precision,
        progress=args.progress,
        columns=int(columns) if columns.isdigit() and int(columns) > 0 else None,
        no_color=bool(environ.get("NO_COLOR")),
        server_url=url,
        server_explicit=explicit,
        embedded_allowed=not args.no_embedded
        and environ.get("EXPORT_TALLY_NO_EMBEDDED", "") in ("", "0"),
        headers=headers,
        smart_credentials=credentials,
        tls_verify=_tls_verify(args),
        insecure=args.insecure,
        follow_redirects_anywhere=args.follow_redirects_anywhere,
        timeout=args.timeout,
        retries=args.retries,
        max_outage=args.max_outage,
        on_bad_row=args.on_bad_row,
        jobs=args.jobs,
        scheduler=args.scheduler,
        in_process_rows=in_process,
        min_part_bytes=args.min_part_bytes,
        keep_checkpoints=not args.no_checkpoint,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_root=root,
        fhir=fhir,
        given=tuple(
            (name, value) for name, value in vars(args).items() if value != parser.get_default(name)
        ),
    )


def debug_asked(argv: Sequence[str]) -> bool:
    """Whether `argv` asks for the trace of an error: what the parser says (it takes any
    unambiguous prefix: --deb), or, when `argv` does not parse, whether it spells --debug out.
    Asked only after an error, wherever it happened (in `parse` too)."""
    try:
        return bool(build_parser(checkpoint_root()).parse_args(list(argv)).debug)
    except UsageError:
        return "--debug" in argv


def _check_files(args: argparse.Namespace) -> None:
    """Fail before the run, not after it, when the output or the report could not be written
    (or the report's libraries are missing)."""
    if args.output is not None:
        from export_tally.render.files import check_writable

        check_writable(args.output)
    if args.report is not None:
        from export_tally.render.report.preflight import check_report_target, ensure_available

        check_report_target(args.report, args.output)
        ensure_available()


def _fhir_choices(args: argparse.Namespace) -> FhirChoices | None:
    """--fhir's choices, checked (UsageError for a flag of it without --fhir, or one that does
    not go with it); None without --fhir. Only then is the FHIR client imported."""
    if args.fhir is None:
        given = [name for name in FHIR_ONLY if getattr(args, name) not in (None, False)]
        if given or args.key != "code":
            flag = "--" + (given[0] if given else "key").replace("_", "-")
            raise UsageError(f"{flag} needs --fhir BASE_URL")
        return None
    for flag, clash in (("--server", args.server), ("--list", args.list)):
        if clash:
            raise UsageError(f"--fhir and {flag} cannot be used together")
    if args.stats and any(names != ["Observation"] for names in args.types or []):
        raise UsageError("--stats reads Observations' values: with --fhir it takes no --type")
    for flag, url in (("--fhir", args.fhir), ("--resume-job", args.resume_job)):
        parts = urlsplit(url) if url is not None else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise UsageError(f"{flag} {url!r} is not an http:// or https:// URL")
    from export_tally.transport.fhir_bulk import ExportRequest

    types = tuple(dict.fromkeys(n for names in args.types or [["Observation"]] for n in names))
    request = ExportRequest(group=args.export_id, types=types, since=args.since)
    return FhirChoices(request, args.key, args.keep_job, args.resume_job)


def _server_url(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The server to use, and whether the user chose it (an explicit server is never replaced)."""
    url = args.server or environ.get("EXPORT_SERVER_URL")
    explicit = url is not None
    url = url or DEFAULT_SERVER
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server {url!r} is not an http:// or https:// URL")
    return url.rstrip("/"), explicit


def _in_process_rows(environ: Mapping[str, str]) -> int:
    """Below how many declared rows an export is counted in the tool's own process."""
    text = environ.get(IN_PROCESS_ROWS_VARIABLE, "")
    if not text:
        return IN_PROCESS_ROWS
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"${IN_PROCESS_ROWS_VARIABLE}: {exc}") from None


def _extra_headers(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """The user's extra headers, checked; the token becomes an Authorization header."""
    headers = []
    for text in args.header:
        name, sep, value = text.partition(":")
        if not sep or not _HEADER_NAME.match(name.strip()):
            raise UsageError("--header must look like 'Name: value'")
        headers.append((name.strip(), value.strip()))
    token = args.token or environ.get("EXPORT_SERVER_TOKEN")
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    return tuple(headers)


def _smart_credentials(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> SmartCredentials | None:
    """--client-id and --private-key, the key file read and checked now (a bad key is exit 2
    before any request), or None. The JWT library is imported only here, when they are given."""
    client_id, key_file, scope = args.client_id, args.private_key, args.scope
    if client_id is None and key_file is None:
        if scope is not None:
            raise UsageError("--scope needs --client-id and --private-key")
        return None
    if key_file is None:
        raise UsageError("--client-id needs --private-key: give both, or neither")
    if client_id is None:
        raise UsageError("--private-key needs --client-id: give both, or neither")
    # Each of these sets the Authorization header too: one of the two would be dropped.
    if args.token:
        raise UsageError("--client-id gets its own access tokens: drop --token")
    if environ.get("EXPORT_SERVER_TOKEN"):
        raise UsageError("--client-id gets its own access tokens: unset $EXPORT_SERVER_TOKEN")
    if any(text.partition(":")[0].strip().lower() == "authorization" for text in args.header):
        raise UsageError("--client-id gets its own access tokens: drop --header 'Authorization'")
    if not _CLIENT_ID.fullmatch(client_id):
        raise UsageError("--client-id must be printable ASCII characters")
    if scope is not None and not _SCOPE.fullmatch(scope):
        raise UsageError(
            f"--scope {scope!r} is not a list of scopes separated by single spaces "
            "(e.g. 'system/*.read')"
        )
    from export_tally.transport.smart_credentials import load_credentials

    return load_credentials(client_id, key_file, scope)


def _tls_verify(args: argparse.Namespace) -> bool | str:
    """True (system CAs), False (--insecure) or a CA bundle's path."""
    if args.insecure:
        return False
    if args.cacert is not None:
        if not args.cacert.is_file():
            raise UsageError(f"--cacert {args.cacert}: no such file")
        return str(args.cacert)
    return True
