"""Back-testing rules in a real browser, as the administrator, with typed fields only (no JSON on
a page for people): a bad number of days is refused with the message next to its field and read
out with it; leaving the lung programme's SpO2 rule out is compared with the current rules per rule
and per patient — axe-core clean, no sideways scrolling on a desktop
or a phone, no JavaScript needed. Other roles are turned away."""

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Locator, expect

from alerts.models import Alert, Rule
from audit.models import AuditEvent
from monitoring.models import Reading, Source
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]

URL = "/rules/backtest/"


def _spo2(patient: Any, value: str, days_ago: int) -> None:
    # Received when measured: the replay evaluates a reading when it arrived, so spreading them
    # over days (with alerts resolved after 12 h) lets every finding raise an alert of its own.
    at = timezone.now() - timedelta(days=days_ago)
    Reading.objects.create(patient=patient, measure="spo2", value=Decimal(value), unit="%", effective_at=at,
                           received_at=at, source=Source.DEVICE)


@pytest.fixture
def history(live_cast: Any) -> None:
    """Patient A (lung): SpO2 90, 93, 94, 97 — one below 92, three below 95. Patient B (heart
    failure, whose rule is not changed): 91. Committed before the browser starts."""
    for value, days in (("90", 5), ("93", 4), ("94", 3), ("97", 2)):
        _spo2(live_cast.patient_a, value, days)
    _spo2(live_cast.patient_b, "91", 2)


def _cells(row: Locator) -> Locator:
    return row.locator("td")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_admin_sees_a_bad_number_next_to_its_field_then_compares_leaving_a_rule_out(
        history: None, new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any,
        viewport: dict[str, int]) -> None:
    lung = Rule.objects.get(program=live_cast.program_a, kind="threshold")
    heart = Rule.objects.get(program=live_cast.program_b, kind="threshold")
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "admin")
    response = page.goto(live_stack.url + URL)
    assert response is not None and response.status == 200
    expect(page.locator("main table").last.locator("tbody tr")).to_have_count(Rule.objects.filter(active=True).count())
    expect(page.locator("main textarea")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("JSON")
    check_page(page, "the back-testing page")

    # 0 days: the message sits next to the field and is the field's accessible description.
    days = page.locator("#id_days")
    days.fill("0")
    page.locator("#id_resolve_after_hours").fill("12")
    page.locator("main form button[type=submit]").click()
    wrapper = page.locator("main .field").filter(has=days)
    expect(wrapper).to_have_class(re.compile(r"\bhas-error\b"))
    errors = wrapper.locator("ul.errors#id_days-errors")
    expect(errors).to_be_visible()
    expect(days).to_have_attribute("aria-describedby", re.compile(r"(^|\s)id_days-errors(\s|$)"))
    expect(page.locator("#result-heading")).to_have_count(0)
    check_page(page, "the back-testing page with an error")
    assert not AuditEvent.objects.filter(resource="Alert?backtest").exists()

    # Leave the lung programme's SpO2 rule out of the candidate.
    days.fill("30")
    page.locator(f"input[name=leave_out][value='{lung.pk}']").check()
    page.locator("main form button[type=submit]").click()
    result = page.locator("section[aria-labelledby=result-heading]")
    expect(result.locator("#result-heading")).to_be_visible()
    expect(wrapper).not_to_have_class(re.compile(r"\bhas-error\b"))
    per_rule, per_patient = result.locator("table").nth(0), result.locator("table").nth(1)
    # Per rule: lung 1 (90) now, none in the candidate; heart failure 1 (91) in both.
    lung_row = per_rule.locator("tbody tr").filter(has=page.locator("th", has_text=f"(#{lung.pk})"))
    expect(lung_row).to_have_count(1)
    expect(_cells(lung_row).nth(3)).to_have_text(re.compile(r"^\s*1\s*\(1 / 0\)\s*$"))
    expect(_cells(lung_row).nth(4)).to_have_text(re.compile(r"^\s*–\s*$"))
    expect(_cells(lung_row).nth(2)).to_have_text(re.compile(r"^\s*(udeladt|left out)\s*$"))
    heart_row = per_rule.locator("tbody tr").filter(has=page.locator("th", has_text=f"(#{heart.pk})"))
    expect(_cells(heart_row).nth(3)).to_have_text(re.compile(r"^\s*1\s*\(1 / 0\)\s*$"))
    expect(_cells(heart_row).nth(4)).to_have_text(re.compile(r"^\s*1\s*\(1 / 0\)\s*$"))
    expect(_cells(heart_row).nth(2)).to_have_text(re.compile(r"^\s*(uændret|unchanged)\s*$"))
    # Per patient, by name (the administrator's own view of both), most alerts first.
    patients = per_patient.locator("tbody tr")
    expect(patients).to_have_count(2)
    expect(patients.nth(0).locator("th")).to_have_text(live_cast.patient_a.name)
    expect(_cells(patients.nth(0))).to_have_text(["1", "0", "-1"])
    expect(patients.nth(1).locator("th")).to_have_text(live_cast.patient_b.name)
    expect(_cells(patients.nth(1))).to_have_text(["1", "1", "0"])
    assert live_cast.patient_a.cpr not in page.url and live_cast.patient_a.cpr not in page.content()
    check_page(page, "the back-test result")
    page.screenshot(path=str(ARTIFACTS / f"backtest-{viewport['width']}.png"), full_page=True)

    # A back-test stores nothing but the audit trail.
    assert not Alert.objects.exists()
    assert Rule.objects.get(pk=lung.pk).active
    assert AuditEvent.objects.filter(user=live_cast.admin, action="search", resource="Alert?backtest").count() == 1


def test_a_clinician_is_refused_and_a_visitor_is_sent_to_log_in(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    visitor = new_context().new_page()
    visitor.goto(live_stack.url + URL)
    expect(visitor).to_have_url(re.compile(r"/login/"))

    page = new_context().new_page()
    login(page, live_stack.url, "clinician-a")
    response = page.goto(live_stack.url + URL)
    assert response is not None and response.status == 403
    expect(page.locator("#id_leave_out")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("SpO2 below 92 %")
