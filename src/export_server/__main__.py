"""`uv run server`: the mock export server's command line.

One front process serves HTTP and streams bodies (from the cache, or as they are generated); a
pool of `--workers` generator processes does the generating. Everything the server has to say
goes to stderr: where the cache is, `listening on URL` once it accepts connections, prewarm
progress, warnings. It refuses to start (exit 2) when its body-size table is not current, or
when the `--fhir-clients` file cannot be used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from export_server.app import ServerConfig, create_app
from export_server.bodies import Bodies, Prewarmed
from export_server.cache import Cache, default_cache_dir
from export_server.dataset import Download, downloads_of
from export_server.errors import ClientsFileError, SizeTableError
from export_server.exitcodes import ExitCode
from export_server.faults import FaultConfig
from export_server.fhir_config import config_from
from export_server.lifeline import watch_parent
from export_server.options import parse_args
from export_server.pool import GeneratorPool
from export_server.size_table import TABLE_PATH, load_sizes

if TYPE_CHECKING:
    from types import FrameType

    from export_server.smart_auth import SmartAuthority

# How long streams get to finish when the server is asked to stop; then they are cut.
GRACEFUL_SECONDS = 1
# After its parent died, the server exits within this even if a graceful stop hangs.
ORPHAN_DEADLINE_SECONDS = 1.5


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


class _Server(uvicorn.Server):
    """A uvicorn server that says where it listens once it accepts connections, then prewarms;
    asked to stop, it starts stopping at once.

    uvicorn looks at `should_exit` every 0.1 s, and lets open connections finish for 0.1 s even
    when there are none. The bundled server is started and stopped by every run of the tool that
    needs it, which waits for it to exit: those fractions of a second are most of its stop.
    """

    def __init__(
        self, config: uvicorn.Config, url: str, bodies: Bodies, prewarm: Sequence[str]
    ) -> None:
        super().__init__(config)
        self.url = url
        self.bodies = bodies
        self.prewarm = prewarm
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._asked_to_exit = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started:
            say(f"listening on {self.url}")
            if self.prewarm:
                task = asyncio.create_task(self._prewarm())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:  # a signal handler: wake the loop through its thread-safe door
            self._loop.call_soon_threadsafe(self._asked_to_exit.set)

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick every 0.1 s, which keeps the Date header fresh), woken at once
        when the server is asked to exit."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._asked_to_exit.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)  # let them finish, up to GRACEFUL_SECONDS
            return
        # Nothing to let finish: stop listening, then the app's shutdown (the generator pool).
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _prewarm(self) -> None:
        downloads = [d for export_id in self.prewarm for d in downloads_of(export_id)]
        started = time.monotonic()
        done: list[Download] = []
        cached = 0

        def report(download: Download, outcome: Prewarmed) -> None:
            nonlocal cached
            done.append(download)
            cached += outcome != "not cached"
            name = f"{download.export.export_id}/{download.id}"
            size = megabytes(self.bodies.size(download))
            say(f"prewarm: {len(done)}/{len(downloads)} {name} ({size}, {outcome})")

        say(f"prewarm: {len(downloads)} downloads of {', '.join(self.prewarm)}")
        await self.bodies.prewarm(downloads, report)
        elapsed = time.monotonic() - started
        say(f"prewarm: done, {cached}/{len(downloads)} downloads cached in {elapsed:.1f} s")


def _open_cache(directory: Path | None, clear: bool) -> Cache | None:
    """The cache, ready to use, with what it holds said on stderr; None if it cannot be used."""
    cache = Cache(directory or default_cache_dir())
    try:
        cache.ensure_writable()
        if clear:
            cleared = cache.clear()
            say(f"cache: cleared {cleared.entries} downloads ({megabytes(cleared.size)})")
        stale = cache.remove_stale_temporaries()
        if stale:
            say(f"cache: removed {stale} unfinished files left by a stopped server")
        usage = cache.usage()
    except OSError as exc:
        say(f"cache: cannot use {cache.root} ({exc.strerror or exc}): serving without a cache")
        return None
    say(f"cache: {cache.root} ({usage.entries} downloads, {megabytes(usage.size)})")
    return cache


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _smart_authority(clients_file: Path | None, token_seconds: int | None) -> SmartAuthority | None:
    """The token authority for `--fhir-clients FILE`, if given, its tokens living
    `token_seconds` (None: the longest, 300 s); raises ClientsFileError.

    Imported only then: the JWT library and cryptography cost every other start of the server.
    """
    if clients_file is None:
        return None
    from export_server.smart_auth import SmartAuthority
    from export_server.smart_clients import load_clients

    clients = load_clients(clients_file)
    if token_seconds is None:
        return SmartAuthority(clients)
    return SmartAuthority(clients, token_seconds=token_seconds)


def _exit_when_orphaned(server: _Server, pool: GeneratorPool) -> None:
    """Stop the server when its parent process exits; hard-exit if stopping takes too long."""

    def on_orphaned() -> None:
        server.should_exit = True
        time.sleep(ORPHAN_DEADLINE_SECONDS)
        pool.kill()
        os._exit(ExitCode.OK)

    watch_parent(on_orphaned)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(argv) if argv is not None else None)
    config = ServerConfig(
        faults=FaultConfig(args.fail_rate, args.drop_rate, args.fault_seed, args.retry_after),
        ranges=not args.no_range,
        fhir=config_from(args, converters=args.workers),
    )
    try:
        sizes = load_sizes(args.size_table or TABLE_PATH)
    except SizeTableError as exc:
        say(f"server: {exc}")
        return ExitCode.USAGE
    try:
        smart = _smart_authority(args.fhir_clients, args.fhir_token_seconds)
    except ClientsFileError as exc:
        say(f"server: --fhir-clients {exc}")
        return ExitCode.USAGE
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        say(f"server: cannot listen on {args.host}:{args.port}: {exc.strerror}")
        return ExitCode.USAGE
    if args.no_cache:
        say("cache: off")
        cache = None
    else:
        cache = _open_cache(args.cache_dir, args.clear_cache)
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    logging.basicConfig(level=args.log_level.upper() if args.log_level != "trace" else "DEBUG")
    pool = GeneratorPool(args.workers)
    bodies = Bodies(pool, cache, sizes)
    tls = args.tls_cert is not None
    uv_config = uvicorn.Config(
        create_app(config, bodies, smart), log_level=args.log_level, access_log=False, ws="none",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
    )  # fmt: skip
    scheme = "https" if tls else "http"
    server = _Server(uv_config, f"{scheme}://{shown_host}:{port}", bodies, args.prewarm)
    if args.exit_with_parent:
        _exit_when_orphaned(server, pool)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    finally:
        pool.kill()  # normally a no-op: the app's shutdown has stopped them already
    return ExitCode.OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
