#!/usr/bin/env python3
"""Open HTML reports in headless Chromium, screenshot them, and fail on any error the page shows.

    uv run python scripts/screenshot_report.py examples/small.html --out docs/report-small.png

Needs Debian's Chromium: `sudo apt-get update && sudo apt-get install -y chromium` (or set
$CHROMIUM to another Chromium or Chrome binary). Uses only the standard library.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`), so the
check does not depend on log formats: a console message of level error or warning, an uncaught
exception, a log entry of level error, a resource that failed to load, and any request for
anything but the page itself (a report must load nothing) all fail the run (exit 1), each
printed on stderr. The page is also checked to have rendered: it must contain an <svg>.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

INSTALL = "sudo apt-get update && sudo apt-get install -y chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class PageError(Exception):
    """The browser or the page reported a problem."""


class Browser:
    """One Chromium process, spoken to over fds 3 (commands) and 4 (answers and events)."""

    def __init__(self, binary: str, profile: str, timeout: float) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._deadline = time.monotonic() + timeout
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

        def wire() -> None:  # in the child: the protocol's pipes become fds 3 and 4
            # Copy both above 10 first: either may already sit at 3 or 4.
            reads = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            writes = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(reads, 3)  # dup2 makes its copy inheritable
            os.dup2(writes, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=False,  # the pipes are close-on-exec; only their copies at 3 and 4 stay open
            preexec_fn=wire,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise PageError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise PageError("the browser exited: " + self._stderr_tail())
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def _stderr_tail(self) -> str:
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        return err.decode(errors="replace")[-2000:]

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command; collect events until its answer; return the answer's result."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        except BrokenPipeError:
            raise PageError("the browser exited: " + self._stderr_tail()) from None
        while True:
            message = self._read_message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise PageError(f"{method}: {message['error']}")
                answer: dict[str, Any] = message.get("result", {})
                return answer
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str) -> None:
        while not any(e["method"] == method for e in self.events):
            message = self._read_message()
            if "method" in message:
                self.events.append(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (PageError, OSError):
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def problems(events: list[dict[str, Any]], page_url: str) -> list[str]:
    """What the page did wrong, one line each."""
    found = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "warning",
            "assert",
        ):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            found.append(f"console {params['type']}: {' '.join(texts)}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            thrown = details.get("exception", {}).get("description") or details.get("text", "")
            found.append(f"exception: {thrown}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(f"log error: {params['entry'].get('text', '')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed to load: {params.get('errorText', '')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != page_url and not url.startswith("data:"):
                found.append(f"the page requested {url}: a report must load nothing")
    return found


def screenshot(
    binary: str, page: Path, out: Path, width: int, height: int | None, timeout: float
) -> list[str]:
    """Load `page`, write a PNG of it to `out`; returns the problems seen (empty when none)."""
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="screenshot-profile-") as profile:
        browser = Browser(binary, profile, timeout)
        try:
            target = browser.send("Target.createTarget", url="about:blank")["targetId"]
            session = browser.send("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session)
            browser.send("Emulation.setDeviceMetricsOverride", session, width=width, height=800,
                         deviceScaleFactor=1, mobile=False)  # fmt: skip
            browser.send("Page.navigate", session, url=url)
            browser.wait_for("Page.loadEventFired")
            svgs = browser.send("Runtime.evaluate", session,
                                expression="document.querySelectorAll('svg').length")  # fmt: skip
            found = problems(browser.events, url)
            if not svgs.get("result", {}).get("value"):
                found.append("the page shows no chart (no <svg> element)")
            size = browser.send("Page.getLayoutMetrics", session)["cssContentSize"]
            full = int(size["height"])
            clip = {"x": 0, "y": 0, "width": width, "height": min(full, height or full), "scale": 1}
            shot = browser.send("Page.captureScreenshot", session, format="png",
                                captureBeyondViewport=True, clip=clip)  # fmt: skip
            out.write_bytes(base64.b64decode(shot["data"]))
            return found
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path, help="HTML reports to open")
    parser.add_argument(
        "--out", type=Path, help="PNG file (one page) or directory (default: beside each page)"
    )
    parser.add_argument(
        "--width", type=int, default=1200, help="viewport width in CSS pixels (default 1200)"
    )
    parser.add_argument(
        "--height",
        type=int,
        help="capture at most this many pixels from the top (default: the whole page)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page (default 60)")
    args = parser.parse_args()
    binary = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not binary:
        print(f"screenshot_report: Chromium not found: install it with `{INSTALL}`, or set $CHROMIUM",
              file=sys.stderr)  # fmt: skip
        return 2
    failed = False
    for page in args.pages:
        if not page.is_file():
            print(f"screenshot_report: {page}: no such file", file=sys.stderr)
            return 2
        if args.out is not None and args.out.suffix == ".png":
            out = args.out
        else:
            out = (args.out or page.parent) / (page.stem + ".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            found = screenshot(binary, page, out, args.width, args.height, args.timeout)
        except PageError as exc:
            found = [str(exc)]
        for line in found:
            print(f"screenshot_report: {page}: {line}", file=sys.stderr)
        failed = failed or bool(found)
        print(f"{page} -> {out}: {'FAILED' if found else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
