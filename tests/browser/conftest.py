"""Browser tests: Debian's chromium driven through Playwright's sync API against the live stack
(tests/live.py) — a real daphne server and, in the production shape, a real Celery worker.

Playwright's sync API keeps an asyncio loop running in the main thread, which makes Django's
ORM refuse to run there (SynchronousOnlyOperation). ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set only
while the browser is up, and only *after* ``live_stack`` has started its processes, so the
server and worker keep Django's async-safety check."""

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.db import connections
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

_axe = Axe()
# Assertions wait like actions do; the 5 s default is short on a busy CI machine.
expect.set_options(timeout=15_000)


@pytest.fixture
def browser(live_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # While Playwright's loop runs, Django hands the test a connection of its own (its
            # connection store is per context); close it here, or PostgreSQL refuses to drop
            # the test database at the end ("being accessed by other users").
            connections.close_all()


# Every page records the Content-Security-Policy's refusals (settings.CONTENT_SECURITY_POLICY):
# the event for each, and chromium's console error besides (for what fires no event).
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.effectiveDirective} refused ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """A fresh browser context (its own cookies: one login each), Danish like the users. At the
    end of the test no page of any context may have logged a CSP refusal to the console."""
    console: list[str] = []

    def make(viewport: ViewportSize = DESKTOP) -> BrowserContext:
        context = browser.new_context(viewport=viewport, locale="da-DK", timezone_id="Europe/Copenhagen")
        context.set_default_timeout(15_000)
        context.add_init_script(_CSP_LISTENER)
        context.on("console", lambda message: console.append(f"{message.page.url if message.page else '?'}: "
                                                             f"{message.text}")
                   if "Content Security Policy" in message.text else None)
        return context

    yield make
    assert not console, "CSP refusals in the console:\n" + "\n".join(console)


def assert_no_csp_violations(page: Page, label: str) -> None:
    """The page's Content-Security-Policy refused nothing it loaded or ran so far."""
    refused = page.evaluate("() => window.__cspViolations || []")
    assert not refused, f"CSP refusals on {label} ({page.url}): {refused}"


def login(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the real login page and wait until it has left it."""
    page.goto(base_url + "/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("main form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))


def assert_accessible(page: Page, label: str) -> None:
    """axe-core (WCAG 2.x A/AA and best practices) finds nothing on the page as it is now."""
    violations = _axe.run(page).response["violations"]
    if violations:
        lines = [f"axe found {len(violations)} violation(s) on {label} ({page.url}):"]
        for v in violations:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
            for node in v["nodes"]:
                lines.append(f"    {', '.join(map(str, node['target']))}: {node['html'][:200]}")
                if node.get("failureSummary"):
                    lines.append("      " + node["failureSummary"].replace("\n", "\n      "))
        pytest.fail("\n".join(lines), pytrace=False)


def assert_no_horizontal_scroll(page: Page, label: str) -> None:
    sizes = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
        " wide: [...document.querySelectorAll('body *')]"
        "   .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
        "   .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)})"
    )
    assert sizes["scroll"] <= sizes["client"], (
        f"{label} scrolls sideways at {page.viewport_size}: {json.dumps(sizes)}"
    )


def check_page(page: Page, label: str) -> None:
    """Accessible, no sideways scrolling at the context's viewport, nothing refused by the CSP."""
    assert_no_csp_violations(page, label)
    assert_accessible(page, label)
    assert_no_horizontal_scroll(page, label)
