"""The 403 and 404 pages in a real browser: a nurse who opens the admin lands on the site's own
403 page (no redirect loop), an unknown address on its 404 page — Danish, with the site's
navigation and a way back, axe-core clean and usable on a phone."""

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_nurse_opening_the_admin_sees_the_403_page_and_a_missing_page_the_404_page(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any,
        viewport: dict[str, int]) -> None:
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "clinician-a")

    answer = page.goto(live_stack.url + "/admin/")
    assert answer is not None and answer.status == 403
    expect(page).to_have_url(live_stack.url + "/admin/")
    expect(page.locator("h1")).to_have_text("Du har ikke adgang til denne side")
    expect(page.locator("html")).to_have_attribute("lang", "da")
    check_page(page, "the 403 page")

    answer = page.goto(live_stack.url + "/no-such-page/")
    assert answer is not None and answer.status == 404
    expect(page.locator("h1")).to_have_text("Siden findes ikke")
    check_page(page, "the 404 page")

    page.get_by_role("link", name="Gå til forsiden").click()
    expect(page).to_have_url(live_stack.url + "/triage/")
