"""axe-core on every programme-editor page (issue 24): each rule kind's form, the rollback
page, the questionnaire wording form, the programme list and the enrolment page, on a desktop
and a phone, in Danish."""

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from alerts.definitions import rule_save
from alerts.models import Rule
from alerts.rule_forms import KIND_LABELS
from tests.browser.conftest import DESKTOP, PHONE, check_page, login

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_editor_page_has_no_axe_violations_and_no_sideways_scrolling(
        new_context: Callable[..., BrowserContext], live_stack: Any, live_cast: Any,
        viewport: dict[str, int]) -> None:
    program = live_cast.program_a
    program.measures = ["spo2", "blood-pressure"]
    program.save()
    rule = Rule.objects.get(program=program, kind="threshold")
    for low in (90, 88):
        rule.params = {**rule.params, "low": low}
        rule_save(rule=rule, by=live_cast.admin, reason=f"Prøver {low}")
    page = new_context(viewport).new_page()
    login(page, live_stack.url, "admin")
    paths = ["/programmes/", f"/programmes/{program.pk}/", f"/programmes/{program.pk}/enrol/",
             f"/programmes/{program.pk}/schedules/new/", f"/programmes/{program.pk}/questionnaires/upload/",
             f"/programmes/{program.pk}/rules/{rule.pk}/", f"/programmes/{program.pk}/rules/{rule.pk}/rollback/2/",
             f"/programmes/{program.pk}/questionnaires/{live_cast.questionnaire.pk}/edit/"]
    paths += [f"/programmes/{program.pk}/rules/new/{kind}/" for kind in KIND_LABELS]
    failures = []
    for path in paths:
        page.goto(live_stack.url + path)
        try:
            check_page(page, path)
        except BaseException as exc:  # noqa: BLE001 - every page reported, not only the first
            failures.append(str(exc))
    # A form sent empty shows its messages: those are checked too.
    page.goto(live_stack.url + f"/programmes/{program.pk}/rules/new/bands/")
    page.get_by_role("button", name="Gem reglen").click()
    try:
        check_page(page, "the bands form with errors")
    except BaseException as exc:  # noqa: BLE001
        failures.append(str(exc))
    assert not failures, "\n".join(failures)
