"""Debian's Chromium through Playwright, for the tests that look at pages: a missing
browser fails the test when ``CI`` is set and skips it otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.stack import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium() -> Iterator[Any]:
    """A launched headless Chromium (use as a module-scoped fixture's body)."""
    if not CHROMIUM.exists():
        skip_or_fail("Debian's Chromium is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is missing: install the dev lock")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()
