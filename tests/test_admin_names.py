"""The Django admin stays for administrators (issue 24): Danish names and choices on the models
the programme editor touches, and no 500 where a questionnaire used to be added by hand."""

import pytest
from django.urls import reverse
from django.utils.translation import override

from alerts.models import EscalationPolicy, Rule, RuleKind
from alerts.rules import KINDS
from schedules.models import SCHEDULE_KINDS, Schedule
from schedules.spec import KINDS as SCHEDULE_SPEC_KINDS

pytestmark = pytest.mark.django_db


def test_the_rule_kinds_people_choose_from_are_exactly_the_registrys():
    assert set(RuleKind.values) == set(KINDS)


def test_the_schedule_kinds_people_choose_from_are_exactly_the_specs():
    assert {k for k, _label in SCHEDULE_KINDS} == set(SCHEDULE_SPEC_KINDS)


def test_models_and_choices_have_danish_names():
    with override("da"):
        assert str(EscalationPolicy._meta.verbose_name_plural) == "eskaleringsplaner"
        assert str(Rule._meta.get_field("kind").verbose_name) == "regeltype"
        assert str(dict(RuleKind.choices)["threshold"]) == "Grænse for en måling"
        assert str(dict(Schedule._meta.get_field("kind").choices)["every"]) == "Med fast antal dages mellemrum"


def test_the_admin_offers_no_questionnaire_add_form_that_could_crash(client, cast):
    client.force_login(cast.admin)
    assert client.get(reverse("admin:questionnaires_questionnaire_add")).status_code == 403
    listing = client.get(reverse("admin:questionnaires_questionnaire_changelist"), HTTP_ACCEPT_LANGUAGE="da")
    assert listing.status_code == 200


def test_the_admin_rule_and_schedule_pages_open_in_danish(client, cast):
    client.force_login(cast.admin)
    for name in ("admin:alerts_rule_add", "admin:schedules_schedule_add", "admin:alerts_escalationpolicy_add",
                 "admin:patients_program_add"):
        page = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE="da")
        assert page.status_code == 200, name
    rule = client.get(reverse("admin:alerts_rule_add"), HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "Grænse for en måling" in rule and "Regeltype" in rule
