"""Parsing FHIR R4 Questionnaires (SDC subset): types, options, weights, translations, controls,
and the report of what the platform cannot honour."""

import copy

import pytest

from questionnaires.definition import parse
from tests.questionnaire_samples import EXT, MULTI_PAGE, SLIDER, sdc_example


def _q(*items: dict, **extra: object) -> dict:
    return {"resourceType": "Questionnaire", "url": "https://x.example/q", "status": "active",
            "item": list(items), **extra}


def _review(resource: dict) -> list[tuple[str, str | None, str]]:
    return [(i.severity, i.link_id, i.message) for i in parse(resource).review()]


def test_every_supported_item_type_parses_and_is_answerable_except_group_and_display():
    types = ["boolean", "integer", "decimal", "string", "text", "date", "dateTime", "time"]
    definition = parse(_q({"linkId": "g", "type": "group", "item": [
        {"linkId": t, "type": t} for t in types] + [{"linkId": "d", "type": "display", "text": "hi"}]}))
    by_id = definition.by_link_id()
    assert [by_id[t].answerable for t in types] == [True] * len(types)
    assert not by_id["g"].answerable and not by_id["d"].answerable
    assert _review(_q({"linkId": "g", "type": "group", "item": [{"linkId": t, "type": t} for t in types]})) == []


def test_answer_options_of_every_value_type_give_their_fhir_answer():
    item = parse(_q({"linkId": "c", "type": "choice", "answerOption": [
        {"valueCoding": {"system": "s", "code": "a", "display": "A"}}, {"valueString": "b"},
        {"valueInteger": 3}, {"valueDate": "2024-01-02"}]})).by_link_id()["c"]
    assert [o.fhir_value() for o in item.answerOption] == [
        {"valueCoding": {"system": "s", "code": "a", "display": "A"}}, {"valueString": "b"},
        {"valueInteger": 3}, {"valueDate": "2024-01-02"}]
    assert [o.key for o in item.answerOption] == ["a", "b", "3", "2024-01-02"]


def test_ordinal_value_and_item_weight_are_read_as_option_weights():
    item = parse(_q({"linkId": "c", "type": "choice", "answerOption": [
        {"valueCoding": {"code": "a"}, "extension": [{"url": EXT + "ordinalValue", "valueDecimal": 2}]},
        {"valueCoding": {"code": "b"}, "extension": [{"url": EXT + "itemWeight", "valueDecimal": 1.5}]},
        {"valueCoding": {"code": "c", "extension": [{"url": EXT + "ordinalValue", "valueDecimal": 3}]}},
        {"valueCoding": {"code": "d"}}]})).by_link_id()["c"]
    assert [str(o.weight) if o.weight is not None else None for o in item.answerOption] == ["2", "1.5", "3", None]
    assert _review(_q(item.model_dump(by_alias=True, exclude_none=True))) == []


def test_translation_extension_picks_the_active_language_and_falls_back_to_text():
    item = parse(MULTI_PAGE).by_link_id()["pain"]
    assert item.text_for("da") == "Har du smerter?"
    assert item.text_for("en") == "Are you in pain?"
    assert item.text_for("en-GB") == "Are you in pain?"
    assert item.text_for("de") == "Har du smerter?"


def test_option_display_translation_is_read_from_the_coding():
    resource = _q({"linkId": "c", "type": "choice", "answerOption": [{"valueCoding": {
        "code": "y", "display": "Ja", "_display": {"extension": [{"url": EXT + "translation", "extension": [
            {"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": "Yes"}]}]}}}]})
    option = parse(resource).by_link_id()["c"].answerOption[0]
    assert (option.display_for("da"), option.display_for("en")) == ("Ja", "Yes")


def test_min_max_slider_and_initial_values_are_read():
    item = parse(MULTI_PAGE).by_link_id()["pain-score"]
    assert (item.min_value, item.max_value, item.control, item.is_slider) == (0, 10, "slider", True)
    initial = parse(_q({"linkId": "n", "type": "integer", "initial": [{"valueInteger": 4}]})).by_link_id()["n"]
    assert initial.initial_answers() == [{"valueInteger": 4}]


def test_contained_value_set_with_an_expansion_becomes_answer_options():
    resource = _q({"linkId": "c", "type": "choice", "answerValueSet": "#yn"}, contained=[{
        "resourceType": "ValueSet", "id": "yn", "status": "active",
        "expansion": {"timestamp": "2024-01-01", "contains": [{"system": "s", "code": "Y", "display": "Yes"}]}}])
    item = parse(resource).by_link_id()["c"]
    assert [o.key for o in item.answerOption] == ["Y"]
    assert _review(resource) == []


@pytest.mark.parametrize("name", ["all-data-types", "enablewhen", "required-field"])
def test_each_sdc_example_parses_with_warnings_only(name):
    issues = _review(sdc_example(name))
    assert [i for i in issues if i[0] == "error"] == []


def test_external_answer_value_set_is_reported_as_free_text_naming_the_link_id():
    issues = _review(sdc_example("required-field"))
    assert len(issues) == 1
    severity, link_id, message = issues[0]
    assert (severity, link_id) == ("warning", "radio")
    assert "answerValueSet" in message and "free text" in message


def test_unsupported_item_type_is_a_warning_when_optional_and_an_error_when_required():
    assert _review(_q({"linkId": "a", "type": "attachment"}))[0][:2] == ("warning", "a")
    assert _review(_q({"linkId": "a", "type": "attachment", "required": True}))[0][:2] == ("error", "a")


@pytest.mark.parametrize(("item", "severity", "words"), [
    ({"linkId": "x", "type": "integer", "extension": [
        {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
         "valueExpression": {"language": "text/fhirpath", "expression": "1"}}]}, "warning", "calculatedExpression"),
    ({"linkId": "x", "type": "choice", "extension": [
        {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-answerExpression",
         "valueExpression": {"language": "text/fhirpath", "expression": "1"}}]}, "error", "answerOption"),
    ({"linkId": "x", "type": "quantity"}, "warning", "quantity"),
    ({"linkId": "x", "type": "reference"}, "warning", "reference"),
    ({"linkId": "x", "type": "string", "enableWhen": [{"question": "nope", "operator": "exists",
                                                       "answerBoolean": True}]}, "error", "unknown item"),
    ({"linkId": "x", "type": "string", "enableWhen": [{"question": "x", "operator": "exists",
                                                       "answerString": "a"}]}, "error", "answerBoolean"),
    # items nested under a question are supported since issue 21 (tests/test_sdc_import.py); under
    # a display item FHIR forbids them
    ({"linkId": "x", "type": "display", "item": [{"linkId": "y", "type": "string"}]}, "error", "nested"),
    ({"linkId": "x", "type": "integer", "extension": [SLIDER]}, "warning", "slider"),
])
def test_unsupported_features_are_reported_naming_the_link_id(item, severity, words):
    issues = _review(_q(item))
    assert any(s == severity and link == "x" and words in message for s, link, message in issues), issues


def test_duplicate_link_id_is_an_error():
    issues = _review(_q({"linkId": "a", "type": "string"}, {"linkId": "a", "type": "string"}))
    assert ("error", "a", "linkId is used twice") in issues


def test_several_conditions_without_enable_behavior_is_an_error():
    resource = copy.deepcopy(MULTI_PAGE)
    del resource["item"][0]["item"][1]["enableBehavior"]
    assert any(s == "error" and link == "pain-where" for s, link, _ in _review(resource))


def test_unknown_item_type_is_refused_by_the_parser():
    with pytest.raises(ValueError, match="type"):
        parse(_q({"linkId": "a", "type": "signature"}))
