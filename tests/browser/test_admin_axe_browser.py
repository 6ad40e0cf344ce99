"""The Django admin pages the project customises, in Danish, with axe-core (issue 24: four
violations were found there, one critical: a field without a label)."""

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from alerts.models import Rule
from tests.browser.conftest import DESKTOP, assert_accessible, login

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_the_customised_admin_pages_have_no_axe_violations(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any) -> None:
    rule = Rule.objects.filter(program=live_cast.program_a, safety_net_for="").first()
    assert rule is not None
    page = new_context(DESKTOP).new_page()
    login(page, live_stack.url, "admin")
    failures = []
    # The rule's add page is gone (rules are added in the editor); its page is read only.
    for path in ("/admin/", "/admin/alerts/rule/", f"/admin/alerts/rule/{rule.pk}/change/",
                 "/admin/schedules/schedule/add/", f"/admin/patients/program/{live_cast.program_a.pk}/change/",
                 "/admin/alerts/escalationpolicy/add/", "/admin/questionnaires/questionnaire/",
                 f"/admin/questionnaires/questionnaire/{live_cast.questionnaire.pk}/change/",
                 "/admin/audit/auditevent/", "/admin/patients/careteam/add/"):
        page.goto(live_stack.url + path)
        try:
            assert_accessible(page, path)
        except BaseException as exc:  # noqa: BLE001 - every page reported, not only the first
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
