"""`uv run server`: the mock export server's command line."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn

from export_server.app import ServerConfig, create_app
from export_server.faults import FaultConfig

EXIT_USAGE = 2


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is outside 0-65535 (0 picks a free port)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="server",
        description="Mock healthcare bulk-export server: byte-identical to the reference.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default: 127.0.0.1; 0.0.0.0 for all)",
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="port (default: 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--log-level", default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"], help="default: warning",
    )  # fmt: skip
    parser.add_argument(
        "--fail-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="answer this fraction of requests with 503/429 (Retry-After: 1) or 500",
    )
    parser.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="cut this fraction of /data bodies off after a random number of bytes",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        metavar="N",
        help="make injected faults reproducible",
    )
    parser.add_argument(
        "--no-range",
        action="store_true",
        help="behave like the reference on the wire: chunked, no Range, ETag or Content-Length",
    )
    return parser  # fmt: skip


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that says where it listens once it accepts connections."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"listening on {self.url}", file=sys.stderr, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = ServerConfig(
        faults=FaultConfig(args.fail_rate, args.drop_rate, args.fault_seed),
        ranges=not args.no_range,
    )
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"server: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    logging.basicConfig(level=args.log_level.upper() if args.log_level != "trace" else "DEBUG")
    uv_config = uvicorn.Config(create_app(config), log_level=args.log_level, access_log=False)
    _AnnouncingServer(uv_config, f"http://{shown_host}:{port}").run(sockets=[sock])
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
