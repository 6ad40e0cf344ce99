"""Issue 19: each instrument's safety net. Every answer the definition colours red raises a red
alert on its own, "Vil du gerne kontaktes af os?" = Ja raises at least a yellow one, in every
programme that uses the instrument — whatever the programme's own rules say."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.definitions import rule_save
from alerts.evaluation.responses import response_evaluate
from alerts.models import Alert, AlertFinding, Rule, RuleRevision
from alerts.rules import parse_params
from alerts.safety import safety_rule_switch
from audit.models import AuditEvent
from patients.models import Program
from questionnaires import library
from questionnaires.definition import parse
from questionnaires.services import questionnaire_import, response_submit
from tests.factories import make_user, response_items

pytestmark = pytest.mark.django_db

PHQ9 = "https://proplatform.example/fhir/Questionnaire/phq-9"


def _only_the_safety_nets() -> None:
    # The cast's own programme rules would raise alerts of their own; the net must do it alone.
    Rule.objects.filter(safety_net_for="").update(active=False)


def _answer(cast, questionnaire, answers, minutes_ago=5):
    response = response_submit(patient=cast.patient_a, questionnaire=questionnaire,
                               items=response_items(questionnaire, answers), author=cast.patient_a.user,
                               authored_at=timezone.now() - timedelta(minutes=minutes_ago))
    response_evaluate(response_id=response.pk)
    return response


def _safety_findings(response):
    return list(AlertFinding.objects.filter(source_key=f"response:{response.pk}", rule__kind="safety")
                .select_related("alert"))


def _red_answers(questionnaire):
    """(linkId, answer) for every answer the definition colours red."""
    for item in questionnaire.definition.items():
        if item.type == "boolean" and item.severity == "red":
            yield item.linkId, True
        for option in item.answerOption:
            if option.severity == "red":
                yield item.linkId, option.code


@pytest.fixture
def phq9(cast):
    questionnaire = questionnaire_import(resource=library.load("phq-9"))
    cast.program_a.questionnaires.add(questionnaire)
    return questionnaire


def test_phq9_item_9_on_several_days_with_everything_else_not_at_all_raises_a_red_alert(cast, phq9):
    # The demo's case: score 1, far below any score rule; the programme has no colour rule.
    _only_the_safety_nets()
    response = _answer(cast, phq9, {"phq9-9": "LA6569-3"})
    [finding] = _safety_findings(response)
    assert finding.severity == "red" and finding.alert.severity == "red"
    assert finding.alert.patient == cast.patient_a and finding.alert.status == "open"
    assert "Tanker om, at det ville være bedre" in finding.reason


def test_phq9_item_9_is_coloured_red_for_every_answer_above_not_at_all():
    item = parse(library.load("phq-9")).by_link_id()["phq9-9"]
    colours = [(option.weight, option.severity) for option in item.answerOption]
    assert colours[0] == (0, None)
    assert [severity for weight, severity in colours[1:]] == ["red"] * 3 and all(w > 0 for w, _ in colours[1:])


@pytest.mark.parametrize("name", library.names())
def test_every_library_instrument_ends_with_the_contact_question_in_danish_and_english(name):
    definition = parse(library.load(name))
    contact = definition.item[-1]
    assert (contact.linkId, contact.type, contact.required) == ("contact", "boolean", True)
    assert contact.text_for("da") == "Vil du gerne kontaktes af os?"
    assert contact.text_for("en") == "Do you want us to contact you?"


@pytest.mark.parametrize("name", library.names())
def test_each_red_answer_of_the_library_alone_raises_a_red_alert_and_contact_alone_a_yellow_one(cast, name):
    questionnaire = questionnaire_import(resource=library.load(name))
    cast.program_a.questionnaires.add(questionnaire)
    _only_the_safety_nets()
    assert Rule.objects.filter(program=cast.program_a, safety_net_for=questionnaire.url, active=True).count() == 1

    normal = _answer(cast, questionnaire, {}, minutes_ago=60)
    assert _safety_findings(normal) == [], "the first options and 'no' must be the normal answers"
    reds = list(_red_answers(questionnaire))
    if name in ("phq-9", "esas-r", "hf-daily", "lung-followup", "ovarian-followup"):
        assert reds, f"{name} colours no answer red"
    for minutes, (link_id, value) in enumerate(reds):
        response = _answer(cast, questionnaire, {link_id: value}, minutes_ago=50 - minutes * 0.1)
        [finding] = _safety_findings(response)
        assert (finding.severity, finding.alert.severity) == ("red", "red"), (link_id, value)
        assert [a["link_id"] for a in finding.evidence["answers"]] == [link_id]
        # Resolved, so the next answer has to raise an alert of its own.
        Alert.objects.filter(pk=finding.alert_id).update(status="resolved", resolved_at=timezone.now())

    asked = _answer(cast, questionnaire, {"contact": True}, minutes_ago=1)
    [finding] = _safety_findings(asked)
    assert finding.severity in ("yellow", "red") and finding.alert.status == "open"
    assert finding.reason == "Patienten beder om at blive kontaktet."


def test_adding_a_questionnaire_to_a_programme_creates_one_active_safety_rule_with_a_revision(cast):
    questionnaire = questionnaire_import(resource=library.load("gad-7"))
    program = Program.objects.create(slug="psych", name="Psykiatri", condition_code="F32",
                                     condition_display="Depression")
    program.questionnaires.add(questionnaire)
    program.questionnaires.add(questionnaire)  # again: nothing new
    questionnaire.programs.add(cast.program_b)  # from the other side of the m2m
    rules = Rule.objects.filter(safety_net_for=questionnaire.url).order_by("program_id")
    assert [(r.program_id, r.kind, r.active, r.severity) for r in rules] == [
        (cast.program_b.pk, "safety", True, "red"), (program.pk, "safety", True, "red")]
    assert all(r.revisions.count() == 1 for r in rules)
    assert all(r.name.startswith("Sikkerhedsnet: ") for r in rules)


def test_a_missing_safety_rule_is_created_at_evaluation_and_the_red_answer_still_raises_an_alert(cast, phq9):
    Rule.objects.filter(kind="safety").delete()  # a programme set up before issue 19
    _only_the_safety_nets()
    response = _answer(cast, phq9, {"phq9-9": "LA6571-9"})
    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    assert rule.active and [f.rule_id for f in _safety_findings(response)] == [rule.pk]


def test_an_answer_to_a_questionnaire_outside_the_programmes_list_is_still_caught(cast):
    questionnaire = questionnaire_import(resource=library.load("phq-9"))  # in no programme
    _only_the_safety_nets()
    response = _answer(cast, questionnaire, {"phq9-9": "LA6570-1"})
    assert [f.severity for f in _safety_findings(response)] == ["red"]


def test_a_switched_off_safety_rule_stays_off_and_keeps_its_reason(cast, phq9):
    _only_the_safety_nets()
    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    safety_rule_switch(rule=rule, active=False, reason="Psykiatrien ringer selv dagligt", by=cast.admin)
    response = _answer(cast, phq9, {"phq9-9": "LA6569-3"})
    assert _safety_findings(response) == [] and not Alert.objects.exists()
    assert Rule.objects.filter(safety_net_for=PHQ9).count() == 1  # not re-created active
    rule.refresh_from_db()
    assert not rule.active and rule.switched_off_reason == "Psykiatrien ringer selv dagligt"
    assert RuleRevision.objects.get(rule=rule, version=rule.version).changed_by == cast.admin
    assert AuditEvent.objects.filter(user=cast.admin, resource=f"Rule/{rule.pk} safety net off").exists()


def test_switching_a_safety_rule_off_without_a_reason_is_refused_and_changes_nothing(cast, phq9):
    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    with pytest.raises(ValidationError) as refused:
        safety_rule_switch(rule=rule, active=False, reason="   ", by=cast.admin)
    assert "reason" in refused.value.message_dict
    rule.refresh_from_db()
    assert rule.active and rule.version == 1 and rule.revisions.count() == 1


def test_only_an_administrator_or_the_programmes_team_lead_may_switch_a_safety_net_off(cast, phq9):
    from django.core.exceptions import PermissionDenied

    from alerts.models import EscalationPolicy

    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    with pytest.raises(PermissionDenied):
        safety_rule_switch(rule=rule, active=False, reason="ingen grund", by=cast.clinician_a)
    with pytest.raises(PermissionDenied):  # leads team B, whose patients are in the other programme
        EscalationPolicy.objects.create(care_team=cast.team_b, lead=cast.clinician_b)
        safety_rule_switch(rule=rule, active=False, reason="ingen grund", by=cast.clinician_b)
    EscalationPolicy.objects.create(care_team=cast.team_a, lead=cast.clinician_a)
    assert not safety_rule_switch(rule=rule, active=False, reason="Afdelingen ringer selv", by=cast.clinician_a).active


def test_the_safety_net_stands_back_where_the_programmes_colour_rule_reports_the_same_response(cast, phq9):
    _only_the_safety_nets()
    rule_save(rule=Rule(program=cast.program_a, kind="answer-severity", name="Svarfarver", severity="yellow",
                        params={"questionnaire": PHQ9}), by=cast.admin)
    response = _answer(cast, phq9, {"phq9-9": "LA6569-3", "contact": True})
    assert _safety_findings(response) == []
    assert [(a.rule.kind, a.severity) for a in Alert.objects.all()] == [("answer-severity", "red")]


def test_the_safety_net_does_not_stand_back_for_a_colour_rule_with_a_cooldown(cast, phq9):
    # A cooled finding is filed on a resolved alert and tells nobody: the net must still fire.
    _only_the_safety_nets()
    rule_save(rule=Rule(program=cast.program_a, kind="answer-severity", name="Svarfarver", severity="yellow",
                        params={"questionnaire": PHQ9}, cooldown=timedelta(days=1)), by=cast.admin)
    response = _answer(cast, phq9, {"phq9-9": "LA6569-3"})
    assert [f.severity for f in _safety_findings(response)] == ["red"]


def test_a_safety_rule_needs_the_questionnaire_it_guards():
    with pytest.raises(ValidationError):
        parse_params("safety", {})
    with pytest.raises(ValidationError):
        parse_params("safety", {"questionnaire": PHQ9, "at_least": "red"})
    assert parse_params("safety", {"questionnaire": PHQ9}).contact_link_id == "contact"


def test_a_clinician_who_leads_no_team_cannot_open_the_safety_net_page(cast, client):
    client.force_login(make_user("plain-clinician", "clinician"))
    assert client.get("/rules/safety/").status_code == 404
    client.force_login(cast.patient_a.user)
    assert client.get("/rules/safety/").status_code == 403


def test_the_safety_net_page_refuses_switching_off_without_a_reason_in_danish_next_to_the_field(cast, client, phq9):
    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    client.force_login(cast.admin)
    response = client.post("/rules/safety/", {"rule": rule.pk, "action": "off", f"r{rule.pk}-reason": ""},
                           HTTP_ACCEPT_LANGUAGE="da")
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_r{rule.pk}-reason-errors"' in html
    assert "Skriv, hvorfor programmet ikke har brug for sikkerhedsnettet." in html
    rule.refresh_from_db()
    assert rule.active and rule.version == 1

    response = client.post("/rules/safety/", {"rule": rule.pk, "action": "off",
                                              f"r{rule.pk}-reason": "Psykiatrien ringer dagligt"})
    assert response.status_code == 302
    html = client.get("/rules/safety/").content.decode()
    assert "Slået fra" in html and "Psykiatrien ringer dagligt" in html
    assert "Programmet har intet telefonnummer til afdelingen" in html
    assert "Psykiatrien ringer dagligt" in client.get("/rules/backtest/").content.decode()
    client.post("/rules/safety/", {"rule": rule.pk, "action": "on"})
    rule.refresh_from_db()
    assert rule.active and rule.version == 3


def test_a_safety_rule_cannot_be_made_by_hand_nor_overridden_for_one_patient(cast, phq9):
    from alerts.definitions import rule_override_set

    with pytest.raises(ValidationError) as refused:
        rule_save(rule=Rule(program=cast.program_b, kind="safety", name="Mit net", severity="red",
                            params={"questionnaire": PHQ9}), by=cast.admin)
    assert "kind" in refused.value.message_dict
    assert not Rule.objects.filter(program=cast.program_b, kind="safety", safety_net_for="").exists()
    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    with pytest.raises(ValidationError):
        rule_override_set(rule=rule, patient=cast.patient_a, params={"questionnaire": "x"}, by=cast.clinician_a,
                          reason="prøver at slå det fra")
    assert not rule.overrides.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_programmes_set_up_before_issue_19_their_safety_nets():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    # The programme table as it was then, too: later patients migrations add columns (measures).
    before = [("alerts", "0006_rule_safety_net"), ("patients", "0006_program_receipt_texts")]
    after = [("alerts", "0007_safety_nets_for_existing_programmes")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state([*before, ("patients", "0006_program_receipt_texts")]).apps
    program = apps.get_model("patients", "Program").objects.create(
        slug="old", name="Gammelt program", condition_code="F32", condition_display="Depression")
    questionnaire = apps.get_model("questionnaires", "Questionnaire").objects.create(
        url=PHQ9, version="1", title="PHQ-9", status="active", resource={})
    program.questionnaires.add(questionnaire)
    try:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        rule = Rule.objects.get(program_id=program.pk)
        assert (rule.kind, rule.safety_net_for, rule.active, rule.name) == (
            "safety", PHQ9, True, "Sikkerhedsnet: PHQ-9")
        assert rule.revisions.get().version == 1
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def test_the_clinician_sees_the_safety_nets_alert_on_the_patient_page_with_the_answer_in_words(cast, client, phq9):
    _only_the_safety_nets()
    _answer(cast, phq9, {"phq9-9": "LA6569-3"})
    client.force_login(cast.clinician_a)
    page = client.get(f"/patients/{cast.patient_a.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sikkerhedsnet: " in html and "Flere dage" in html and "Tanker om, at det ville være bedre" in html
    assert AuditEvent.objects.filter(user=cast.clinician_a, patient_ref=cast.patient_a.pk).exists()


def test_the_programmes_admin_page_and_the_rule_list_show_a_switched_off_safety_net_and_why(cast, client, phq9):
    rule = Rule.objects.get(program=cast.program_a, safety_net_for=PHQ9)
    safety_rule_switch(rule=rule, active=False, reason="Psykiatrien ringer selv dagligt", by=cast.admin)
    client.force_login(cast.admin)
    page = client.get(f"/admin/patients/program/{cast.program_a.pk}/change/")
    assert page.status_code == 200
    assert "Sikkerhedsnet: " in page.content.decode() and "Psykiatrien ringer selv dagligt" in page.content.decode()
    assert "Psykiatrien ringer selv dagligt" in client.get("/admin/alerts/rule/").content.decode()
