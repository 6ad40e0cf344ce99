"""The programme editor's rule forms (issue 24): typed per kind, pickers limited to the
programme, Danish messages next to the field, trial before saving, revisions and rollback."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from alerts.models import EscalationPolicy, Rule, RuleRevision
from alerts.rule_forms import KIND_LABELS, RuleForm
from alerts.rules import KINDS
from audit.models import AuditEvent
from monitoring.models import Reading

pytestmark = pytest.mark.django_db


def _login(client, user):
    client.force_login(user)
    return client


def _threshold_post(**extra):
    data = {"name": "SpO2 under 90 %", "severity": "red", "cooldown_hours": "", "p_measure": "spo2",
            "p_component": "value", "p_low": "90", "p_high": "", "reason": "Aftalt på teammødet", "action": "save"}
    data.update(extra)
    return data


@pytest.fixture
def program(cast):
    cast.program_a.measures = ["spo2", "body-weight"]
    cast.program_a.save()
    return cast.program_a


def test_every_kind_a_person_adds_declares_a_form_for_its_parameters(cast):
    for kind in KIND_LABELS:
        assert KINDS[kind].FORM, kind


def test_every_kind_form_renders_without_json_for_an_administrator(client, cast, program):
    _login(client, cast.admin)
    for kind in KIND_LABELS:
        page = client.get(reverse("editor-rule-new", args=[program.pk, kind]))
        assert page.status_code == 200, kind
        assert b"JSON" not in page.content and b"{&quot;" not in page.content, kind


def test_measure_picker_offers_only_the_programmes_measures(cast, program):
    form = RuleForm(kind="threshold", program=program)
    codes = [code for code, _label in form.fields["p_measure"].choices if code]
    assert codes == ["spo2", "body-weight"]


def test_a_measure_outside_the_programme_or_in_other_case_is_refused_in_danish_and_nothing_saved(
        client, cast, program):
    _login(client, cast.admin)
    before = Rule.objects.count()
    with override("da"):
        for measure in ("SpO2", "heart-rate", "treshold"):
            page = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]),
                               _threshold_post(p_measure=measure), HTTP_ACCEPT_LANGUAGE="da")
            assert page.status_code == 200
            assert "Vælg en af programmets målinger" in page.content.decode()
    assert Rule.objects.count() == before


def test_inverted_limits_get_a_danish_message_next_to_the_upper_limit_and_nothing_is_saved(client, cast, program):
    _login(client, cast.admin)
    before = Rule.objects.count()
    page = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]),
                       _threshold_post(p_low="95", p_high="90"), HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert 'id="id_p_high-errors"' in body
    assert "Den nedre grænse skal være under den øvre grænse." in body
    assert Rule.objects.count() == before


def test_a_limit_outside_what_the_measure_can_be_is_refused_next_to_the_field(client, cast, program):
    _login(client, cast.admin)
    page = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]),
                       _threshold_post(p_low="500"), HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert 'id="id_p_low-errors"' in body and "kan kun være fra 50 til 100" in body


def test_a_rule_without_a_reason_is_not_saved(client, cast, program):
    _login(client, cast.admin)
    before = Rule.objects.count()
    page = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]), _threshold_post(reason=""),
                       HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_reason-errors"' in page.content.decode()
    assert Rule.objects.count() == before


def test_a_threshold_rule_saved_from_the_form_is_a_revision_with_who_and_why(client, cast, program):
    _login(client, cast.admin)
    page = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]), _threshold_post(p_low="90,5"))
    assert page.status_code == 302
    rule = Rule.objects.get(program=program, name="SpO2 under 90 %")
    assert rule.kind == "threshold" and rule.params == {"measure": "spo2", "low": "90.5"}
    revision = RuleRevision.objects.get(rule=rule)
    assert (revision.changed_by, revision.reason) == (cast.admin, "Aftalt på teammødet")
    assert AuditEvent.objects.filter(resource=f"Rule/{rule.pk} v1", action="create").exists()


def test_a_per_answer_rule_offers_the_programmes_questions_and_saves_the_ticked_answers(client, cast, program):
    _login(client, cast.admin)
    form = RuleForm(kind="answer", program=program)
    item = f"{cast.questionnaire.url}|contact"
    assert item in [value for value, _label in form.fields["p_link_id"].choices]
    page = client.post(reverse("editor-rule-new", args=[program.pk, "answer"]), {
        "name": "Vil kontaktes", "severity": "yellow", "p_link_id": item, "p_codes": ["contact|true"],
        "reason": "Kontaktønske", "action": "save"})
    assert page.status_code == 302
    rule = Rule.objects.get(program=program, name="Vil kontaktes")
    assert rule.params == {"questionnaire": cast.questionnaire.url, "link_id": "contact", "codes": ["true"]}


def test_answers_to_another_question_than_the_one_picked_are_refused_next_to_the_answers(client, cast, program):
    _login(client, cast.admin)
    form = RuleForm(kind="answer", program=program)
    other = next(v for v, _label in form.fields["p_codes"].choices if not v.startswith("contact|"))
    page = client.post(reverse("editor-rule-new", args=[program.pk, "answer"]), {
        "name": "x", "severity": "yellow", "p_link_id": f"{cast.questionnaire.url}|contact", "p_codes": [other],
        "reason": "x", "action": "save"}, HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_p_codes-errors"' in page.content.decode()


def test_the_trial_counts_what_the_rule_would_have_raised_and_saves_nothing(client, cast, program):
    now = timezone.now()
    for value in (88, 89, 95):
        Reading.objects.create(patient=cast.patient_a, measure="spo2", value=Decimal(value), unit="%",
                               effective_at=now, received_at=now)
    _login(client, cast.admin)
    before = (Rule.objects.count(), RuleRevision.objects.count())
    page = client.post(reverse("editor-rule-new", args=[program.pk, "threshold"]),
                       _threshold_post(action="backtest"), HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert page.status_code == 200
    assert "1 røde og 0 gule alarmer for 1 patienter" in body
    assert "Alma" in body
    assert (Rule.objects.count(), RuleRevision.objects.count()) == before


def test_a_changed_rule_is_a_new_version_and_a_rollback_is_another_new_version(client, cast, program):
    _login(client, cast.admin)
    rule = Rule.objects.get(program=program, kind="threshold")
    page = client.get(reverse("editor-rule", args=[program.pk, rule.pk]))
    assert page.context["form"].initial["p_low"] == 92
    for low, why in (("88", "For mange alarmer"), ("85", "Stadig for mange")):
        client.post(reverse("editor-rule", args=[program.pk, rule.pk]),
                    _threshold_post(name=rule.name, p_low=low, reason=why))
    rule.refresh_from_db()
    assert rule.version == 3 and rule.params["low"] == "85"
    missing_reason = client.post(reverse("editor-rule-rollback", args=[program.pk, rule.pk, 2]), {"reason": ""},
                                 HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_reason-errors"' in missing_reason.content.decode()
    rule.refresh_from_db()
    assert rule.version == 3
    client.post(reverse("editor-rule-rollback", args=[program.pk, rule.pk, 2]), {"reason": "Lægen vil have 88"})
    rule.refresh_from_db()
    assert rule.version == 4 and rule.params["low"] == "88"
    last = RuleRevision.objects.get(rule=rule, version=4)
    assert "version 2" in last.reason and "Lægen vil have 88" in last.reason and last.changed_by == cast.admin
    programme_page = client.get(reverse("editor-program", args=[program.pk])).content.decode()
    assert "Lægen vil have 88" in programme_page


def test_only_administrators_and_the_programmes_team_leads_open_the_editor(client, cast, program):
    url = reverse("editor-program", args=[program.pk])
    for user in (cast.clinician_a, cast.clinician_b, cast.quality):
        client.force_login(user)
        assert client.get(url).status_code == 404
    client.force_login(cast.patient_a.user)
    assert client.get(url).status_code == 404
    EscalationPolicy.objects.create(care_team=cast.team_a, lead=cast.clinician_a, on_call=cast.clinician_a)
    client.force_login(cast.clinician_a)
    assert client.get(url).status_code == 200
    assert client.get(reverse("editor-program", args=[cast.program_b.pk])).status_code == 404


def test_an_administrator_creates_a_programme_with_its_texts_and_measures_without_json(client, cast):
    from patients.models import Program

    _login(client, cast.admin)
    page = client.post(reverse("editor-program-new"), {
        "name": "Hjemmemonitorering ved KOL", "slug": "kol-hjemme", "condition_code": "DJ44",
        "condition_display": "KOL", "review_workdays": "2", "department_phone": "78 45 00 00",
        "contact_text_da": "Vi ringer.", "contact_text_en": "We call.", "urgent_text_da": "Ring nu.",
        "urgent_text_en": "Call now.", "measures": ["spo2", "heart-rate"], "questionnaires": [cast.questionnaire.pk]})
    assert page.status_code == 302
    program = Program.objects.get(slug="kol-hjemme")
    assert program.measures == ["spo2", "heart-rate"] and program.department_phone == "78 45 00 00"
    assert list(program.questionnaires.all()) == [cast.questionnaire]
    assert AuditEvent.objects.filter(resource=f"Program/{program.pk}", action="create").exists()


def test_a_programme_without_a_name_or_with_a_taken_short_name_is_refused_in_danish(client, cast):
    from patients.models import Program

    _login(client, cast.admin)
    before = Program.objects.count()
    page = client.post(reverse("editor-program-new"), {"name": "", "slug": "lung", "condition_code": "DJ44",
                                                       "condition_display": "KOL", "review_workdays": "2"},
                       HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert "Giv programmet et navn." in body and "Et andet program har allerede dette korte navn." in body
    assert Program.objects.count() == before


def test_which_value_is_asked_only_when_the_programme_measures_blood_pressure(cast, program):
    assert "p_component" not in RuleForm(kind="threshold", program=program).fields
    program.measures = ["spo2", "blood-pressure"]
    assert "p_component" in RuleForm(kind="threshold", program=program).fields


def test_the_programme_page_shows_a_per_answer_rule_with_its_question_and_answer_in_words(client, cast, program):
    _login(client, cast.admin)
    body = client.get(reverse("editor-program", args=[program.pk]), HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "<dd>contact</dd>" not in body and "<dd>true</dd>" not in body
    assert "<dd>Ja</dd>" in body


@pytest.mark.parametrize(("kind", "fields", "expected"), [
    ("bands", {"p_measure": "spo2", "p_bands__alert_low": "88", "p_bands__warning_low": "92"},
     {"measure": "spo2", "bands": {"alert_low": "88", "warning_low": "92"}}),
    ("change", {"p_measure": "body-weight", "p_direction": "up", "p_more_than": "2", "p_window": "72",
                "p_reference": "median"},
     {"measure": "body-weight", "direction": "up", "more_than": "2", "window": "PT259200S", "reference": "median"}),
    ("news2", {"p_window_hours": "12", "p_yellow_total": "5", "p_red_total": "7"},
     {"window_hours": "12", "yellow_total": 5, "red_total": 7}),
    ("missed", {"p_questionnaire": "", "p_grace_hours": "12", "p_consecutive": "2"},
     {"grace_hours": "12", "consecutive": 2}),
    ("answer-severity", {"p_questionnaire": "", "p_at_least": "red"}, {"at_least": "red"}),
])
def test_each_kinds_form_saves_the_parameters_its_kind_validates(client, cast, program, kind, fields, expected):
    _login(client, cast.admin)
    page = client.post(reverse("editor-rule-new", args=[program.pk, kind]), {
        "name": f"Regel {kind}", "severity": "yellow", "reason": "Prøve", "action": "save", **fields})
    assert page.status_code == 302, page.context["form"].errors
    assert Rule.objects.get(program=program, name=f"Regel {kind}").params == expected


def test_a_score_rule_takes_questions_of_the_chosen_questionnaire_only(client, cast, program):
    _login(client, cast.admin)
    form = RuleForm(kind="score", program=program)
    item = next(v for v, _label in form.fields["p_items"].choices)
    page = client.post(reverse("editor-rule-new", args=[program.pk, "score"]), {
        "name": "Score", "severity": "yellow", "reason": "Prøve", "action": "save", "p_questionnaire":
        cast.questionnaire.url, "p_items": [item], "p_higher_is_worse": "true", "p_limit": "3",
        "p_against": "previous"})
    assert page.status_code == 302, page.context["form"].errors
    rule = Rule.objects.get(program=program, name="Score")
    assert rule.params["items"] == [item.split("|", 1)[1]] and rule.params["higher_is_worse"] is True


def test_yellow_at_or_above_red_in_news2_is_refused_next_to_red(client, cast, program):
    _login(client, cast.admin)
    page = client.post(reverse("editor-rule-new", args=[program.pk, "news2"]), {
        "name": "NEWS2", "severity": "yellow", "reason": "x", "action": "save", "p_window_hours": "12",
        "p_yellow_total": "7", "p_red_total": "5"}, HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert 'id="id_p_red_total-errors"' in body and "Gul skal begynde under rød." in body


def test_the_rule_form_speaks_english_to_an_english_browser(client, cast, program):
    _login(client, cast.admin)
    body = client.get(reverse("editor-rule-new", args=[program.pk, "threshold"]),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Alarm below" in body and "Try it on the last 90 days" in body


def test_a_team_lead_sets_up_a_programme_for_their_own_team_and_nobody_elses(client, cast):
    from patients.models import Program

    EscalationPolicy.objects.create(care_team=cast.team_a, lead=cast.clinician_a)
    _login(client, cast.clinician_a)
    base = {"name": "KOL", "slug": "kol", "condition_code": "DJ44", "condition_display": "KOL",
            "review_workdays": "2", "contact_text_da": "a", "contact_text_en": "a", "urgent_text_da": "a",
            "urgent_text_en": "a"}
    refused = client.post(reverse("editor-program-new"), {**base, "teams": [cast.team_b.pk]}, HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_teams-errors"' in refused.content.decode()
    assert client.post(reverse("editor-program-new"), {**base, "teams": [cast.team_a.pk]}).status_code == 302
    program = Program.objects.get(slug="kol")
    assert list(program.teams.all()) == [cast.team_a]
    assert client.get(reverse("editor-program", args=[program.pk])).status_code == 200
    client.force_login(cast.clinician_b)
    assert client.get(reverse("editor-program", args=[program.pk])).status_code == 404
    assert client.get(reverse("editor-program-new")).status_code == 403


def test_the_staff_menu_links_the_editor_for_administrators_and_team_leads_only(client, cast):
    link = 'href="/programmes/"'
    client.force_login(cast.admin)
    assert link in client.get("/patients/").content.decode()
    client.force_login(cast.clinician_a)
    assert link not in client.get("/patients/").content.decode()
    EscalationPolicy.objects.create(care_team=cast.team_a, lead=cast.clinician_a)
    assert link in client.get("/patients/").content.decode()
    assert client.get("/programmes/").status_code == 200
    client.force_login(cast.quality)
    assert link not in client.get("/quality/").content.decode()


def test_a_trial_needs_no_reason_yet_and_saving_the_tried_change_does(client, cast, program):
    client.force_login(cast.admin)
    rule = Rule.objects.get(program=program, kind="threshold")
    url = reverse("editor-rule", args=[program.pk, rule.pk])
    data = {"name": rule.name, "severity": "red", "cooldown_hours": "", "p_measure": "spo2", "p_low": "90",
            "p_high": "", "reason": ""}
    trial = client.post(url, {**data, "action": "backtest"}, HTTP_ACCEPT_LANGUAGE="da")
    assert trial.context["trial"] is not None and not trial.context["form"].errors
    saved = client.post(url, {**data, "action": "save"}, HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_reason-errors"' in saved.content.decode()
    rule.refresh_from_db()
    assert rule.params["low"] == 92
