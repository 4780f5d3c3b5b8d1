"""Headless Chromium for page tests: Debian's `chromium` (scripts/install-browser.sh) driven by
Playwright's Python package, which launches that binary instead of downloading a browser of its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

from tests.servers import ROOT

ARTIFACTS = ROOT / "tests" / "artifacts"
# As root Chromium needs --no-sandbox; the rest keeps it off the network (only loopback is reachable
# here, and its background fetches would each fail) and fast to start.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)
LAUNCH_TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """$SWITCHYARD_CHROMIUM, else `chromium` on the PATH; raises with the install command when missing."""
    path = os.environ.get("SWITCHYARD_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError("Chromium is not installed: run `sudo bash scripts/install-browser.sh` (Debian's chromium).")
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=chromium_path(), args=list(CHROMIUM_FLAGS), timeout=LAUNCH_TIMEOUT_MS
    )


@dataclass
class PageLog:
    """What a page did besides rendering: console errors, uncaught exceptions, requests made."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> PageLog:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("request", self._request)
        return self

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, request: Request) -> None:
        self.requests.append(f"{request.method} {request.url}")


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under tests/artifacts/, kept after the run for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
