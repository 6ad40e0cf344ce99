"""The trend pages in a real browser: the clinician's chart page (mark a reading as wrong, errors
next to the field) and the patient's "My measurements" on a phone — axe-core clean, no sideways
scrolling, the chart a picture with a name, the table stacked."""

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from monitoring.models import Reading, Source
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def _readings(cast: Any) -> list[Reading]:
    now = timezone.now()
    values = [96, 95, 93, 91, 94, 86, 95, 97]
    readings = [Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal(v), unit="%",
                                       effective_at=now - timedelta(days=2 * i + 1), source=Source.DEVICE,
                                       unusual=v < 88)
                for i, v in enumerate(values)]
    Reading.objects.create(patient=cast.patient_a, measure="blood-pressure", value=Decimal(138),
                           value2=Decimal(88), unit="mm[Hg]", effective_at=now - timedelta(days=1),
                           source=Source.WEB, entered_by=cast.patient_a.user)
    return readings


@VIEWPORTS
def test_clinician_reads_the_trend_and_marks_a_reading_as_wrong(new_context: Callable[..., BrowserContext],
                                                                 live_stack: Any, live_cast: Any,
                                                                 viewport: dict[str, int]) -> None:
    readings = _readings(live_cast)
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "clinician-a")
    page.goto(f"{live_stack.url}/patients/{live_cast.patient_a.pk}/")
    page.locator("main nav.choices a", has_text="Iltmætning").click()
    expect(page).to_have_url(re.compile(rf"/patients/{live_cast.patient_a.pk}/readings/spo2/$"))
    chart = page.locator("main figure.chart svg[role=img]")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("aria-label", re.compile("Iltmætning"))
    expect(page.locator("main table.readings tbody tr")).to_have_count(8)
    check_page(page, "the clinician's trend page")
    page.screenshot(path=str(ARTIFACTS / f"readings-clinician-{viewport['width']}.png"), full_page=True)

    wrong = readings[3]  # 91 %, two days before the unusual one
    page.locator(f"main a[href$='/readings/{wrong.pk}/erroneous/']").click()
    expect(page.locator("h1")).to_be_visible()
    page.locator("main form button[type=submit]").click()
    field = page.locator("main .field").filter(has=page.locator("#id_reason"))
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(field.locator("ul.errors")).to_be_visible()
    wrong.refresh_from_db()
    assert wrong.erroneous_at is None, "a mark without a reason was stored"
    check_page(page, "the mark page (with errors)")
    page.screenshot(path=str(ARTIFACTS / f"reading-erroneous-{viewport['width']}.png"), full_page=True)

    page.locator("#id_reason").fill("Fingeren var kold")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/patients/{live_cast.patient_a.pk}/readings/spo2/$"))
    expect(page.locator("main .messages .message.success")).to_be_visible()
    row = page.locator("main table.readings tr.erroneous")
    expect(row).to_have_count(1)
    expect(row.locator("s")).to_have_text("91 %")
    expect(row).to_contain_text("Fingeren var kold")
    check_page(page, "the trend page after marking")
    wrong.refresh_from_db()
    assert wrong.erroneous_reason == "Fingeren var kold"


def test_patient_sees_my_measurements_on_a_phone(new_context: Callable[..., BrowserContext], live_stack: Any,
                                                 live_cast: Any) -> None:
    _readings(live_cast)
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.goto(live_stack.url + "/me/readings/")
    expect(page.locator("main figure.chart svg[role=img]")).to_be_visible()
    check_page(page, "/me/readings/ (phone)")
    page.screenshot(path=str(ARTIFACTS / "my-readings-390.png"), full_page=True)

    # The table is stacked: every cell says which column it belongs to.
    first_value = page.locator("main table.readings tbody tr").first.locator("td.value")
    label = first_value.evaluate("e => getComputedStyle(e, '::before').content")
    assert "Værdi" in label or "Value" in label, label

    page.locator("main nav.choices a", has_text="Blodtryk").click()
    expect(page).to_have_url(re.compile(r"/me/readings/blood-pressure/\?days=30$"))
    expect(page.locator("main table.readings")).to_contain_text("138/88")
    check_page(page, "/me/readings/blood-pressure/ (phone)")
    page.screenshot(path=str(ARTIFACTS / "my-readings-bp-390.png"), full_page=True)

    page.locator("main nav.choices a", has_text="7").click()
    expect(page.locator("main nav.choices a[aria-current=page]", has_text="7")).to_be_visible()
    check_page(page, "/me/readings/blood-pressure/?days=7 (phone)")


def test_patient_sends_blood_pressure_on_its_own_page_on_a_phone(new_context: Callable[..., BrowserContext],
                                                                live_stack: Any, live_cast: Any) -> None:
    page = new_context(PHONE).new_page()
    login(page, live_stack.url, "patient-a")
    page.goto(live_stack.url + "/me/readings/new/")
    page.locator("main nav.choices a", has_text="Blodtryk").click()
    expect(page).to_have_url(live_stack.url + "/me/readings/new/blood-pressure/")
    expect(page.locator("main .with-unit .unit")).to_have_count(2)
    check_page(page, "/me/readings/new/blood-pressure/ (phone)")
    page.locator("#id_value").fill("80")
    page.locator("#id_value2").fill("120")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("main .field").filter(has=page.locator("#id_value")).locator("ul.errors")).to_be_visible()
    check_page(page, "/me/readings/new/blood-pressure/ (with errors)")
    page.screenshot(path=str(ARTIFACTS / "reading-new-bp-390.png"), full_page=True)
    page.locator("#id_value").fill("142")
    page.locator("#id_value2").fill("91")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(live_stack.url + "/me/readings/blood-pressure/")
    expect(page.locator("main table.readings")).to_contain_text("142/91")
    assert Reading.objects.filter(patient=live_cast.patient_a, measure="blood-pressure").count() == 1
