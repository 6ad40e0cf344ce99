"""The device registry in a real browser, as a nurse uses it: from the patient page to the
patient's devices, registering a device (a duplicate serial answered next to the field), issuing
a token that is shown once and works against the real API, revoking it (refused at once),
registering the return and finding the device in the team-wide list — axe-core clean, no
sideways scrolling on a desktop or a phone, no JavaScript needed."""

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from monitoring.models import Device, DeviceToken
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def _reading(live_stack: Any, token: str) -> int:
    status, _body = live_stack.request(
        "POST", "/api/v1/readings",
        {"measure": "spo2", "value": 96, "unit": "%",
         "effective_at": (timezone.now() - timedelta(minutes=3)).isoformat()},
        headers={"Authorization": f"Bearer {token}"})
    return status


@VIEWPORTS
def test_a_nurse_registers_a_device_issues_and_revokes_its_token_and_registers_its_return(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any,
        viewport: dict[str, int]) -> None:
    width = viewport["width"]
    patient = live_cast.patient_a
    context = new_context(viewport)
    context.set_extra_http_headers({})  # no JavaScript is needed: every step is a link or a form
    page = context.new_page()
    login(page, live_stack.url, "clinician-a")

    page.goto(f"{live_stack.url}/patients/{patient.pk}/")
    page.locator(f"main a[href='/patients/{patient.pk}/devices/']").click()
    expect(page).to_have_url(f"{live_stack.url}/patients/{patient.pk}/devices/")
    expect(page.locator("main table.devices")).to_contain_text("OX-A")
    check_page(page, "the patient's devices")
    page.screenshot(path=str(ARTIFACTS / f"devices-patient-{width}.png"), full_page=True)

    # Register: a serial number that a device of the same kind already has.
    page.locator("main a[href$='/devices/new/']").click()
    check_page(page, "the register page")
    page.locator("input[name=kind][value=pulse-oximeter]").check()
    page.locator("#id_model").fill("Nonin 3230")
    page.locator("#id_serial").fill("OX-A")
    page.locator("main form button[type=submit]").click()
    field = page.locator("main .field").filter(has=page.locator("#id_serial"))
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(field.locator("#id_serial-errors")).to_contain_text("OX-A")
    expect(page.locator("#id_serial")).to_have_attribute("aria-describedby", re.compile(r"id_serial-errors"))
    expect(page.locator("main .error-summary")).to_be_visible()
    assert Device.objects.filter(serial="OX-A").count() == 1, "a duplicate device was stored"
    check_page(page, "the register page (duplicate serial)")
    page.screenshot(path=str(ARTIFACTS / f"device-register-error-{width}.png"), full_page=True)

    page.locator("#id_serial").fill("OX-777")
    page.locator("main form button[type=submit]").click()
    device = Device.objects.get(serial="OX-777")
    expect(page).to_have_url(f"{live_stack.url}/patients/{patient.pk}/devices/{device.pk}/")
    expect(page.locator("main .messages .message.success")).to_be_visible()
    check_page(page, "the device page")

    # Issue a token: shown once, on the page that answers the POST.
    page.locator("main form[action$='/token/'] button[type=submit]").click()
    token_text = page.locator("main code.device-token")
    expect(token_text).to_have_text(re.compile(r"^dv_\S{20,}$"))
    raw = token_text.inner_text()
    check_page(page, "the new token page")
    page.screenshot(path=str(ARTIFACTS / f"device-token-{width}.png"), full_page=True)
    assert _reading(live_stack, raw) == 201
    page.locator("main a.button").click()
    expect(page).to_have_url(f"{live_stack.url}/patients/{patient.pk}/devices/{device.pk}/")
    assert raw not in page.content(), "the token was shown a second time"

    # Revoke: the next API request with it is refused.
    page.locator("main form[action$='/token/revoke/'] button[type=submit]").click()
    expect(page.locator("main .messages .message.success")).to_be_visible()
    assert _reading(live_stack, raw) == 401
    assert not DeviceToken.objects.filter(device=device, revoked_at=None).exists()

    # The return: a date in the future is answered next to the field, then the right one.
    tomorrow = timezone.localdate() + timedelta(days=1)
    page.locator("#id_returned_on").fill(tomorrow.isoformat())
    page.locator("main form:has(#id_returned_on) button[type=submit]").click()
    returned = page.locator("main .field").filter(has=page.locator("#id_returned_on"))
    expect(returned.locator("#id_returned_on-errors")).to_be_visible()
    check_page(page, "the device page (bad return date)")
    page.locator("#id_returned_on").fill(timezone.localdate().isoformat())
    page.locator("main form:has(#id_returned_on) button[type=submit]").click()
    expect(page.locator("main .messages .message.success")).to_be_visible()
    device.refresh_from_db()
    assert device.lent_to == timezone.localdate()

    # The team-wide list, filtered without JavaScript (a GET form).
    page.goto(f"{live_stack.url}/devices/")
    page.locator("#id_kind").select_option("pulse-oximeter")
    page.locator("main form[method=get] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/devices/\?kind=pulse-oximeter"))
    rows = page.locator("main table.devices tbody tr")
    expect(rows).to_have_count(2)  # OX-A and OX-777; team B's OX-B is not shown
    expect(page.locator("main table.devices")).not_to_contain_text("OX-B")
    check_page(page, "the team's device list")
    page.screenshot(path=str(ARTIFACTS / f"devices-team-{width}.png"), full_page=True)
