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


def test_the_admin_schedule_policy_and_programme_pages_open_in_danish(client, cast):
    client.force_login(cast.admin)
    for name in ("admin:schedules_schedule_add", "admin:alerts_escalationpolicy_add", "admin:patients_program_add"):
        page = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE="da")
        assert page.status_code == 200, name


def test_the_admin_shows_a_rule_read_only_in_words_with_a_link_to_the_editors_typed_form(client, cast):
    client.force_login(cast.admin)
    rule = Rule.objects.get(program=cast.program_a, kind="threshold")
    assert client.get(reverse("admin:alerts_rule_add")).status_code == 403  # added in the editor
    page = client.get(reverse("admin:alerts_rule_change", args=[rule.pk]), HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert page.status_code == 200 and "Grænse for en måling" in body and "Regeltype" in body
    assert "Nedre grænse: 92" in body and '{"measure"' not in body and "<textarea" not in body
    assert f'href="/programmes/{cast.program_a.pk}/rules/{rule.pk}/"' in body
    assert client.post(reverse("admin:alerts_rule_change", args=[rule.pk]),
                       {"name": "x", "params": "{}"}).status_code == 403
    rule.refresh_from_db()
    assert rule.name == "SpO2 below 92 %"


def test_every_name_the_admin_shows_has_a_danish_entry():
    from django.contrib import admin
    from django.utils.translation import trans_real

    catalogue = trans_real.translation("da")._catalog
    missing = []
    for model in admin.site._registry:
        meta = model._meta
        names = [meta.verbose_name, meta.verbose_name_plural]
        names += [f.verbose_name for f in meta.get_fields() if hasattr(f, "verbose_name")]
        with override(None):
            names = [str(n) for n in names]
        missing += [f"{meta.label}: {n}" for n in names if n not in catalogue]
    assert not missing, missing


def test_no_admin_page_answers_500(client, cast):
    """Every list, every add form and the first object's change form of every model the admin
    shows: 200, 302 or 403 — never a crash."""
    from django.contrib import admin

    client.force_login(cast.admin)
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls = [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"{name}_change", args=[first.pk]))
        for url in urls:
            status = client.get(url, HTTP_ACCEPT_LANGUAGE="da").status_code
            assert status in (200, 302, 403), (url, status)


def test_the_readings_admin_names_measures_and_its_actions_speak_danish(client, cast):
    client.force_login(cast.admin)
    page = client.get("/admin/monitoring/reading/", HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "Iltmætning (SpO2)" in page
    devices = client.get("/admin/monitoring/device/", HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "Tilbagekald alle nøgler" in devices and "Revoke all tokens" not in devices
