"""The console in a real browser: Playwright driving Debian's chromium (``apt-get install chromium``; Playwright's own
browser download is not used), with screenshots kept under ``test-artifacts/console/`` and axe-core's checks."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Dialog, Page, async_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
NARROW = {"width": 390, "height": 844}  # a phone held upright


def chromium() -> str:
    """The system chromium's path; in CI (CI=true) a missing browser fails the test, elsewhere it skips it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        why = "Debian's chromium is not installed: apt-get install -y chromium (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path


@contextlib.asynccontextmanager
async def console_page(base_url: str, viewport: dict[str, int] | None = None) -> AsyncIterator[Page]:
    """A fresh browser profile with one page at ``base_url``; confirmation dialogs are accepted."""
    executable = chromium()
    async with async_playwright() as pw:
        # --no-sandbox: the tests may run as root (CI does), where chromium's sandbox refuses to start.
        browser = await pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = await browser.new_context(base_url=base_url, viewport=viewport or NARROW)  # type: ignore[arg-type]
            page = await context.new_page()

            async def accept(dialog: Dialog) -> None:
                await dialog.accept()

            page.on("dialog", accept)
            yield page
            await context.close()
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact and print where."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (the axe build that axe-playwright-python ships)."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


async def overflows(page: Page) -> bool:
    """Whether the page is wider than the viewport (a horizontal scroll bar)."""
    return bool(await page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth"))
