"""Validating QuestionnaireResponse.item against a questionnaire version: every kind of bad input
gets an error naming the linkId; answers to disabled items are dropped."""

import pytest
from django.utils import translation

from questionnaires.definition import parse
from questionnaires.validation import response_validate
from tests.questionnaire_samples import MULTI_PAGE

DEF = parse(MULTI_PAGE)
NONE = {"valueCoding": {"system": "https://proplatform.example/fhir/CodeSystem/test", "code": "none"}}
SEVERE = {"valueCoding": {"system": "https://proplatform.example/fhir/CodeSystem/test", "code": "severe"}}


def _item(link_id: str, *answers: dict) -> dict:
    return {"linkId": link_id, "answer": list(answers)}


def _valid(**overrides: list[dict] | None) -> list[dict]:
    answers: dict[str, list[dict] | None] = {
        "pain": [NONE], "breathless": [{"valueBoolean": False}], "contact": [{"valueBoolean": True}]}
    answers.update(overrides)
    return [_item(k, *v) for k, v in answers.items() if v is not None]


def _errors(items: object) -> list[tuple[str | None, str]]:
    with translation.override("en"):
        return [(e.link_id, e.message) for e in response_validate(DEF, items).errors]


def test_a_valid_flat_response_is_rebuilt_in_the_questionnaires_groups_and_order():
    result = response_validate(DEF, list(reversed(_valid())))
    assert result.errors == []
    assert [i["linkId"] for i in result.items] == ["symptoms", "breathing", "contact"]
    assert result.items[0]["item"][0]["answer"] == [{"valueCoding": {
        "system": "https://proplatform.example/fhir/CodeSystem/test", "code": "none", "display": "Nej"}}]
    assert result.items[0]["text"] == "Smerter"


def test_unknown_link_id_is_an_error_naming_it():
    assert ("nope", "No question has this linkId.") in _errors(_valid() + [_item("nope", {"valueString": "x"})])


@pytest.mark.parametrize(("link_id", "answer"), [
    ("breathless", {"valueString": "yes"}),
    ("breathless", {"valueInteger": 1}),
    ("temperature", {"valueString": "38"}),
    ("temperature", {"valueDecimal": True}),
    ("pain", {"valueString": "none"}),
])
def test_wrong_type_is_an_error_naming_the_link_id(link_id, answer):
    errors = _errors(_valid(**{link_id: [answer]}))
    assert [e[0] for e in errors] == [link_id]


@pytest.mark.parametrize(("link_id", "answer"), [
    ("temperature", {"valueDecimal": 33.9}), ("temperature", {"valueDecimal": 43.1}),
])
def test_out_of_range_is_an_error(link_id, answer):
    errors = _errors(_valid(**{link_id: [answer]}))
    assert len(errors) == 1 and errors[0][0] == link_id
    assert "34" in errors[0][1] or "43" in errors[0][1]


def test_in_range_bounds_are_accepted():
    assert _errors(_valid(temperature=[{"valueDecimal": 34}])) == []
    assert _errors(_valid(temperature=[{"valueDecimal": 43.0}])) == []


def test_option_not_in_answer_option_is_an_error():
    bad = {"valueCoding": {"system": "https://proplatform.example/fhir/CodeSystem/test", "code": "terrible"}}
    assert [e[0] for e in _errors(_valid(pain=[bad]))] == ["pain"]


def test_several_answers_to_a_non_repeating_item_is_an_error():
    assert [e[0] for e in _errors(_valid(pain=[NONE, SEVERE]))] == ["pain"]


def test_max_length_is_enforced():
    items = _valid(pain=[SEVERE], **{"pain-where": [{"valueString": "x" * 101}],
                                     "pain-score": [{"valueInteger": 3}]})
    assert [e[0] for e in _errors(items)] == ["pain-where"]


def test_missing_required_answer_is_an_error_for_each_item():
    errors = _errors([_item("pain", NONE)])
    assert sorted(e[0] for e in errors) == ["breathless", "contact"]


def test_required_item_is_only_required_while_enabled():
    # pain-score is required, but only asked when the pain is severe
    assert _errors(_valid()) == []
    assert [e[0] for e in _errors(_valid(pain=[SEVERE]))] == ["pain-score"]


def test_answer_to_a_disabled_item_is_dropped_and_never_returned():
    result = response_validate(DEF, _valid(**{"pain-where": [{"valueString": "knee"}],
                                              "pain-score": [{"valueInteger": 7}]}))
    assert result.errors == []
    assert sorted(result.dropped) == ["pain-score", "pain-where"]
    assert "pain-where" not in str(result.items) and "pain-score" not in str(result.items)


def test_drafts_skip_the_required_check_but_not_the_types():
    assert response_validate(DEF, [_item("pain", NONE)], check_required=False).errors == []
    assert response_validate(DEF, [_item("contact", {"valueString": "y"})], check_required=False).errors


@pytest.mark.parametrize("items", [
    "not a list", [{"answer": []}], [{"linkId": 5}], [{"linkId": "pain", "answer": "x"}],
    [{"linkId": "pain", "answer": [{}]}], [{"linkId": "pain", "answer": [{"valueCoding": {}, "valueString": "a"}]}],
    [{"linkId": "pain", "answer": ["x"]}],
])
def test_malformed_items_are_errors_not_exceptions(items):
    assert response_validate(DEF, items).errors


def test_an_item_given_twice_is_an_error():
    twice = _valid() + [_item("contact", {"valueBoolean": False})]
    assert ("contact", "This item is given more than once.") in _errors(twice)


def test_answers_to_group_and_display_items_are_errors():
    assert [e[0] for e in _errors(_valid() + [_item("symptoms", {"valueString": "x"})])] == ["symptoms"]


def test_dates_times_and_free_text_choices_are_checked():
    definition = parse({"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "d", "type": "date"}, {"linkId": "t", "type": "dateTime"}, {"linkId": "h", "type": "time"},
        {"linkId": "vs", "type": "choice", "answerValueSet": "http://example.org/ValueSet/x"},
        {"linkId": "r", "type": "string", "readOnly": True, "initial": [{"valueString": "fixed"}]}]})

    def errors(link_id: str, answer: dict) -> list:
        return [tuple(e) for e in response_validate(definition, [_item(link_id, answer)]).errors]

    assert errors("d", {"valueDate": "2024-02-29"}) == []
    assert errors("d", {"valueDate": "2023-02-30"})
    assert errors("d", {"valueDate": "yesterday"})
    assert errors("t", {"valueDateTime": "2024-01-01T10:00:00+01:00"}) == []
    assert errors("t", {"valueDateTime": "2024-01-01T10:00:00"})  # a time of day needs a zone
    assert errors("h", {"valueTime": "10:30:00"}) == [] and errors("h", {"valueTime": "25:00"})
    assert errors("vs", {"valueString": "Tasmania"}) == []
    assert errors("r", {"valueString": "changed"})
    assert response_validate(definition, []).answers["r"] == [{"valueString": "fixed"}]
