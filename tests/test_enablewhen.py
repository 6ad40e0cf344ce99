"""enableWhen: every operator, any/all, nested groups, and answers of disabled items not counting."""

import pytest

from questionnaires.definition import parse
from questionnaires.enablewhen import enabled_items
from tests.questionnaire_samples import sdc_example


def _q(source_type: str, operator: str, answer: dict, **extra: object):
    return parse({"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "src", "type": source_type, **extra},
        {"linkId": "dep", "type": "string", "enableWhen": [{"question": "src", "operator": operator, **answer}]},
    ]})


def _on(definition, answers) -> bool:
    return "dep" in enabled_items(definition, answers)


@pytest.mark.parametrize(("operator", "expected", "given", "enabled"), [
    ("=", 5, 5, True), ("=", 5, 4, False),
    ("!=", 5, 4, True), ("!=", 5, 5, False),
    (">", 5, 6, True), (">", 5, 5, False),
    ("<", 5, 4, True), ("<", 5, 5, False),
    (">=", 5, 5, True), (">=", 5, 4, False),
    ("<=", 5, 5, True), ("<=", 5, 6, False),
])
def test_each_comparison_operator_on_an_integer(operator, expected, given, enabled):
    definition = _q("integer", operator, {"answerInteger": expected})
    assert _on(definition, {"src": [{"valueInteger": given}]}) is enabled


@pytest.mark.parametrize("operator", ["=", ">", "<", ">=", "<="])
def test_an_unanswered_question_satisfies_no_comparison(operator):
    assert not _on(_q("integer", operator, {"answerInteger": 5}), {})


def test_not_equals_holds_for_an_unanswered_question():
    assert _on(_q("integer", "!=", {"answerInteger": 5}), {})


def test_exists_true_and_false():
    on_answer = _q("string", "exists", {"answerBoolean": True})
    on_blank = _q("string", "exists", {"answerBoolean": False})
    assert _on(on_answer, {"src": [{"valueString": "x"}]}) and not _on(on_answer, {})
    assert _on(on_blank, {}) and not _on(on_blank, {"src": [{"valueString": "x"}]})


def test_decimal_date_time_and_boolean_comparisons():
    assert _on(_q("decimal", ">", {"answerDecimal": 37.5}), {"src": [{"valueDecimal": 38.1}]})
    assert not _on(_q("decimal", ">", {"answerDecimal": 37.5}), {"src": [{"valueDecimal": 37.5}]})
    assert _on(_q("date", ">", {"answerDate": "2000-01-01"}), {"src": [{"valueDate": "2001-05-05"}]})
    assert _on(_q("date", "<=", {"answerDate": "2000-01-01"}), {"src": [{"valueDate": "2000-01-01"}]})
    assert _on(_q("time", ">", {"answerTime": "11:11:11"}), {"src": [{"valueTime": "12:00"}]})
    assert _on(_q("boolean", "=", {"answerBoolean": True}), {"src": [{"valueBoolean": True}]})
    assert not _on(_q("boolean", "=", {"answerBoolean": True}), {"src": [{"valueBoolean": False}]})


def test_codings_match_on_code_and_a_system_given_on_both_sides():
    definition = _q("choice", "=", {"answerCoding": {"system": "s", "code": "a"}},
                    answerOption=[{"valueCoding": {"system": "s", "code": "a"}}])
    assert _on(definition, {"src": [{"valueCoding": {"system": "s", "code": "a"}}]})
    assert _on(definition, {"src": [{"valueCoding": {"code": "a"}}]})
    assert not _on(definition, {"src": [{"valueCoding": {"system": "other", "code": "a"}}]})
    assert not _on(definition, {"src": [{"valueCoding": {"system": "s", "code": "b"}}]})


def test_a_coded_answer_compares_its_code_with_a_plain_value_as_the_sdc_examples_do():
    definition = _q("choice", "<", {"answerDecimal": 2.1}, answerOption=[{"valueCoding": {"code": "1.1"}}])
    assert _on(definition, {"src": [{"valueCoding": {"code": "1.1"}}]})
    assert not _on(definition, {"src": [{"valueCoding": {"code": "3.3"}}]})
    assert _on(_q("choice", "=", {"answerString": "2"}, answerOption=[{"valueCoding": {"code": "2"}}]),
               {"src": [{"valueCoding": {"code": "2"}}]})


def test_repeating_answers_equals_any_and_not_equals_none():
    eq = _q("choice", "=", {"answerCoding": {"code": "9"}}, repeats=True,
            answerOption=[{"valueCoding": {"code": c}} for c in ("1", "9")])
    ne = _q("choice", "!=", {"answerCoding": {"code": "9"}}, repeats=True,
            answerOption=[{"valueCoding": {"code": c}} for c in ("1", "9")])
    both = {"src": [{"valueCoding": {"code": "1"}}, {"valueCoding": {"code": "9"}}]}
    assert _on(eq, both) and not _on(ne, both)
    assert _on(ne, {"src": [{"valueCoding": {"code": "1"}}]})


def _two(behavior: str):
    return parse({"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "a", "type": "boolean"}, {"linkId": "b", "type": "boolean"},
        {"linkId": "dep", "type": "string", "enableBehavior": behavior, "enableWhen": [
            {"question": "a", "operator": "=", "answerBoolean": True},
            {"question": "b", "operator": "=", "answerBoolean": True}]}]})


def test_enable_behavior_all_needs_every_condition_and_any_needs_one():
    one = {"a": [{"valueBoolean": True}], "b": [{"valueBoolean": False}]}
    both = {"a": [{"valueBoolean": True}], "b": [{"valueBoolean": True}]}
    assert not _on(_two("all"), one) and _on(_two("all"), both)
    assert _on(_two("any"), one) and not _on(_two("any"), {})


def test_a_disabled_group_disables_its_children_and_their_answers_do_not_count():
    definition = parse({"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "gate", "type": "boolean"},
        {"linkId": "g", "type": "group", "enableWhen": [{"question": "gate", "operator": "=", "answerBoolean": True}],
         "item": [{"linkId": "inner", "type": "boolean"},
                  {"linkId": "sub", "type": "group", "item": [{"linkId": "deep", "type": "string"}]}]},
        {"linkId": "dep", "type": "string", "enableWhen": [{"question": "inner", "operator": "exists",
                                                           "answerBoolean": True}]}]})
    answers = {"gate": [{"valueBoolean": False}], "inner": [{"valueBoolean": True}]}
    enabled = enabled_items(definition, answers)
    assert {"g", "inner", "sub", "deep", "dep"}.isdisjoint(enabled)
    answers["gate"] = [{"valueBoolean": True}]
    assert {"g", "inner", "sub", "deep", "dep"} <= enabled_items(definition, answers)


def test_sdc_enablewhen_example_scenarios():
    definition = parse(sdc_example("enablewhen"))
    q1, radio = "83d5c1a6-5dc3-44d0-9d9e-d687c72e143e", "s1-radio"
    hidden_until_q1 = "e5da17a7-7546-45c5-9bcd-d0b09a74cc14"
    hidden_until_radio2 = "e5da17a7-7546-45c5-9bcd-d0b09a74ty76"
    off = enabled_items(definition, {})
    assert hidden_until_q1 not in off and hidden_until_radio2 not in off
    on = enabled_items(definition, {q1: [{"valueBoolean": True}],
                                    radio: [{"valueCoding": {"code": "2", "system": "http://example.org"}}]})
    assert hidden_until_q1 in on and hidden_until_radio2 in on
    # Scenario 6: multi-select "Other" (code 9) enables "Please specify"
    other = {"BC029": [{"valueCoding": {"code": "1"}}, {"valueCoding": {"code": "9"}}]}
    assert "BOWOPTOTH" in enabled_items(definition, other)
    assert "BOWOPTOTH" not in enabled_items(definition, {"BC029": [{"valueCoding": {"code": "1"}}]})
