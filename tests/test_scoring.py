"""Declarative scoring (questionnaires.scoring): the shipped instruments with known answer sets,
reverse items, means, missing-item rules, bands at their exact boundaries, and malformed specs."""

from typing import Any

import pytest

from questionnaires import library
from questionnaires.models import Questionnaire
from questionnaires.scoring import ScoringSpecError, parse_spec, score_response, spec_problems

ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
PHQ9 = [f"phq9-{n}" for n in range(1, 10)]
GAD7 = [f"gad7-{n}" for n in range(1, 8)]
ESAS = ["esas-pain", "esas-tiredness", "esas-drowsiness", "esas-nausea", "esas-appetite", "esas-breath",
        "esas-depression", "esas-anxiety", "esas-wellbeing"]


def _instrument(name: str) -> Questionnaire:
    # Unsaved: score_response is pure and needs no database.
    resource = library.load(name)
    return Questionnaire(url=resource["url"], version="1", title=name, resource=resource,
                         scoring=library.load_scoring(name))


def _coding(resource: dict[str, Any], link_id: str, ordinal: int) -> dict[str, Any]:
    """The plain coding of the answer option worth ``ordinal`` on item ``link_id``."""
    def walk(items: list[dict[str, Any]]):
        for item in items:
            yield item
            yield from walk(item.get("item", []))

    item = next(i for i in walk(resource["item"]) if i["linkId"] == link_id)
    for option in item["answerOption"]:
        if any(e["url"] == ORDINAL and e["valueDecimal"] == ordinal for e in option.get("extension", [])):
            coding = option["valueCoding"]
            return {"system": coding["system"], "code": coding["code"], "display": coding["display"]}
    raise AssertionError(f"{link_id} has no option worth {ordinal}")


def _answers(questionnaire: Questionnaire, values: dict[str, int], group: str | None = None) -> list[dict[str, Any]]:
    """Response items as the form stores them, nested in the instrument's group when given."""
    items = [{"linkId": link_id, "answer": [{"valueCoding": _coding(questionnaire.resource, link_id, v)}]}
             for link_id, v in values.items()]
    items.append({"linkId": "contact", "answer": [{"valueBoolean": False}]})
    return [{"linkId": group, "item": items}] if group else items


def _spread(link_ids: list[str], total: int, per_item_max: int = 3) -> dict[str, int]:
    """Item values adding up to ``total``: as many maxed items as fit, then the remainder."""
    values = {}
    for link_id in link_ids:
        values[link_id] = min(per_item_max, total)
        total -= values[link_id]
    assert total == 0
    return values


def _only(scores: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(scores) == 1
    return scores[0]


# --- PHQ-9 -----------------------------------------------------------------------------------------

def test_phq9_all_several_days_scores_nine_which_is_mild_depression():
    phq = _instrument("phq-9")
    score = _only(score_response(questionnaire=phq, items=_answers(phq, dict.fromkeys(PHQ9, 1), "phq9")))
    assert score == {
        "code": {"system": "http://loinc.org", "code": "44261-6",
                 "display": "Patient Health Questionnaire 9 item (PHQ-9) total score"},
        "value": 9,
        "band": {"code": "mild", "display_da": "Let depression", "display_en": "Mild depression"},
        "answered": 9, "missing": 0, "reason_no_score": None,
    }
    assert isinstance(score["value"], int)


def test_phq9_all_nearly_every_day_scores_27_which_is_severe():
    phq = _instrument("phq-9")
    score = _only(score_response(questionnaire=phq, items=_answers(phq, dict.fromkeys(PHQ9, 3), "phq9")))
    assert (score["value"], score["band"]["code"]) == (27, "severe")


def test_phq9_all_not_at_all_scores_zero_which_is_minimal():
    phq = _instrument("phq-9")
    score = _only(score_response(questionnaire=phq, items=_answers(phq, dict.fromkeys(PHQ9, 0), "phq9")))
    assert (score["value"], score["band"]["code"]) == (0, "minimal")


@pytest.mark.parametrize(("total", "band"), [
    (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
    (15, "moderately-severe"), (19, "moderately-severe"), (20, "severe"), (27, "severe"),
])
def test_phq9_bands_change_exactly_at_5_10_15_and_20(total, band):
    phq = _instrument("phq-9")
    score = _only(score_response(questionnaire=phq, items=_answers(phq, _spread(PHQ9, total), "phq9")))
    assert (score["value"], score["band"]["code"]) == (total, band)


def test_phq9_with_one_unanswered_item_is_prorated_to_nine_items():
    phq = _instrument("phq-9")
    values = dict.fromkeys(PHQ9[:8], 1)  # item 9 unanswered; 8 answered, sum 8 -> 8 x 9/8 = 9
    score = _only(score_response(questionnaire=phq, items=_answers(phq, values, "phq9")))
    assert (score["value"], score["band"]["code"], score["answered"], score["missing"]) == (9, "mild", 8, 1)


def test_phq9_prorated_half_point_rounds_up_across_a_band_boundary():
    phq = _instrument("phq-9")
    values = {**dict.fromkeys(PHQ9[:4], 1), **dict.fromkeys(PHQ9[4:8], 0)}  # sum 4 of 8 -> 4.5 -> 5
    score = _only(score_response(questionnaire=phq, items=_answers(phq, values, "phq9")))
    assert (score["value"], score["band"]["code"]) == (5, "mild")


def test_phq9_with_two_unanswered_items_gives_no_score_and_says_why():
    phq = _instrument("phq-9")
    score = _only(score_response(questionnaire=phq, items=_answers(phq, dict.fromkeys(PHQ9[:7], 3), "phq9")))
    assert score["value"] is None and score["band"] is None
    assert (score["answered"], score["missing"]) == (7, 2)
    assert score["reason_no_score"] == "2 of 9 items unanswered; at most 1 may be missing"


def test_an_answer_code_the_questionnaire_does_not_offer_counts_as_missing():
    phq = _instrument("phq-9")
    items = _answers(phq, dict.fromkeys(PHQ9, 1), "phq9")
    items[0]["item"][0]["answer"] = [{"valueCoding": {"system": "http://loinc.org", "code": "LA9999-9"}}]
    items[0]["item"][1]["answer"] = [{"valueCoding": {"system": "http://example.org/other", "code": "LA6569-3"}}]
    score = _only(score_response(questionnaire=phq, items=items))
    assert (score["value"], score["missing"]) == (None, 2)


def test_a_coding_without_system_is_matched_by_its_code_alone():
    phq = _instrument("phq-9")
    items = _answers(phq, dict.fromkeys(PHQ9, 1), "phq9")
    items[0]["item"][0]["answer"] = [{"valueCoding": {"code": "LA6571-9"}}]  # nearly every day = 3
    assert _only(score_response(questionnaire=phq, items=items))["value"] == 11


def test_two_answers_to_one_scored_item_count_as_missing():
    phq = _instrument("phq-9")
    items = _answers(phq, dict.fromkeys(PHQ9, 1), "phq9")
    items[0]["item"][0]["answer"] *= 2
    score = _only(score_response(questionnaire=phq, items=items))
    assert (score["value"], score["answered"], score["missing"]) == (9, 8, 1)  # prorated from 8 answers


def test_weights_sent_by_the_client_are_ignored_in_favour_of_the_questionnaires():
    phq = _instrument("phq-9")
    items = _answers(phq, dict.fromkeys(PHQ9, 0), "phq9")
    for item in items[0]["item"][:9]:
        item["answer"][0]["valueCoding"]["extension"] = [{"url": ORDINAL, "valueDecimal": 3}]
    assert _only(score_response(questionnaire=phq, items=items))["value"] == 0


# --- GAD-7 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "band"), [
    (0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
    (15, "severe"), (21, "severe"),
])
def test_gad7_bands_change_exactly_at_5_10_and_15(total, band):
    gad = _instrument("gad-7")
    score = _only(score_response(questionnaire=gad, items=_answers(gad, _spread(GAD7, total), "gad7")))
    assert score["code"]["code"] == "70274-6"
    assert (score["value"], score["band"]["code"]) == (total, band)


def test_gad7_with_one_unanswered_item_is_prorated_and_with_two_is_not_scored():
    gad = _instrument("gad-7")
    one = _only(score_response(questionnaire=gad, items=_answers(gad, dict.fromkeys(GAD7[:6], 2), "gad7")))
    assert one["value"] == 14  # 12 x 7/6
    two = _only(score_response(questionnaire=gad, items=_answers(gad, dict.fromkeys(GAD7[:5], 2), "gad7")))
    assert two["value"] is None and "2 of 7" in two["reason_no_score"]


# --- ESAS-r ----------------------------------------------------------------------------------------

def test_esas_r_scores_total_then_physical_and_emotional_subscales():
    esas = _instrument("esas-r")
    values = dict(zip(ESAS, [3, 5, 1, 0, 2, 4, 6, 7, 5], strict=True))
    scores = score_response(questionnaire=esas, items=_answers(esas, values, "esas"))
    assert [(s["code"]["code"], s["value"]) for s in scores] == [
        ("esas-r-total", 33), ("esas-r-physical", 15), ("esas-r-emotional", 13)]
    assert all(s["band"] is None for s in scores)  # ESAS-r has no validated total bands


def test_esas_r_without_wellbeing_has_no_total_but_keeps_complete_subscales():
    esas = _instrument("esas-r")
    values = dict.fromkeys(ESAS[:8], 2)
    total, physical, emotional = score_response(questionnaire=esas, items=_answers(esas, values, "esas"))
    assert total["value"] is None and total["missing"] == 1
    assert (physical["value"], emotional["value"]) == (12, 4)


# --- spec features on a small synthetic questionnaire ---------------------------------------------

NUMERIC_RESOURCE = {
    "resourceType": "Questionnaire", "status": "active",
    "item": [{"linkId": link_id, "type": "integer", "text": link_id} for link_id in ("a", "b", "c", "d")]
    + [{"linkId": "w", "type": "choice", "text": "w", "answerOption": [
        {"valueCoding": {"system": "urn:x", "code": "lo"},
         "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 1.5}]},
        {"valueCoding": {"system": "urn:x", "code": "hi"},
         "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 4}]}]}],
}
CODE = {"system": "urn:test", "code": "t", "display": "Test scale"}


def _synthetic(scale: dict[str, Any]) -> Questionnaire:
    return Questionnaire(url="urn:test", version="1", resource=NUMERIC_RESOURCE,
                         scoring={"scales": [{"code": CODE, **scale}]})


def _ints(**values: int | float) -> list[dict[str, Any]]:
    return [{"linkId": k, "answer": [{"valueDecimal" if isinstance(v, float) else "valueInteger": v}]}
            for k, v in values.items()]


def test_reverse_items_are_scored_as_min_plus_max_minus_the_answer():
    questionnaire = _synthetic({"method": "sum", "items": ["a", "b", "c"], "reverse_items": ["b", "c"],
                                "item_min": 1, "item_max": 5})
    score = _only(score_response(questionnaire=questionnaire, items=_ints(a=1, b=1, c=5)))
    assert score["value"] == 1 + 5 + 1


def test_mean_scale_averages_the_answered_items_when_few_enough_are_missing():
    questionnaire = _synthetic({"method": "mean", "items": ["a", "b", "c"], "missing": {"max_missing": 1},
                                "round_to": 2})
    assert _only(score_response(questionnaire=questionnaire, items=_ints(a=2, b=3)))["value"] == 2.5
    assert _only(score_response(questionnaire=questionnaire, items=_ints(a=1, b=1, c=2)))["value"] == 1.33
    assert _only(score_response(questionnaire=questionnaire, items=_ints(a=2)))["value"] is None


def test_mean_of_decimal_answers_falls_into_the_band_that_contains_it():
    questionnaire = _synthetic({"method": "mean", "items": ["a", "b"], "bands": [
        {"min": 0, "max": 2.5, "code": "low", "display_da": "Lav", "display_en": "Low"},
        {"min": 2.51, "max": 10, "code": "high", "display_da": "Høj", "display_en": "High"}]})
    low = _only(score_response(questionnaire=questionnaire, items=_ints(a=2.0, b=3.0)))
    high = _only(score_response(questionnaire=questionnaire, items=_ints(a=2.0, b=3.1)))
    assert (low["value"], low["band"]["code"]) == (2.5, "low")
    assert (high["value"], high["band"]["code"]) == (2.55, "high")


def test_item_weight_is_used_when_an_option_has_no_ordinal_value():
    questionnaire = _synthetic({"method": "sum", "items": ["a", "w"]})
    items = _ints(a=2) + [{"linkId": "w", "answer": [{"valueCoding": {"system": "urn:x", "code": "lo"}}]}]
    assert _only(score_response(questionnaire=questionnaire, items=items))["value"] == 3.5


def test_without_proration_a_missing_item_allowed_by_the_rule_is_simply_left_out_of_the_sum():
    questionnaire = _synthetic({"method": "sum", "items": ["a", "b", "c"], "missing": {"max_missing": 1}})
    assert _only(score_response(questionnaire=questionnaire, items=_ints(a=2, b=3)))["value"] == 5


def test_a_yes_no_answer_is_not_taken_as_a_number():
    questionnaire = _synthetic({"method": "sum", "items": ["a", "b"]})
    items = _ints(a=2) + [{"linkId": "b", "answer": [{"valueBoolean": True}]}]
    assert _only(score_response(questionnaire=questionnaire, items=items))["value"] is None


def test_an_unscored_questionnaire_gives_no_scores():
    hf = _instrument("hf-daily")
    assert hf.scoring is None
    assert score_response(questionnaire=hf, items=[{"linkId": "contact", "answer": [{"valueBoolean": True}]}]) == []


# --- malformed specs -------------------------------------------------------------------------------

GOOD_SCALE = {"code": CODE, "method": "sum", "items": ["a", "b", "c"]}


@pytest.mark.parametrize(("spec", "message"), [
    ({}, "scales: Field required"),
    ({"scales": []}, "scales: List should have at least 1 item"),
    ({"scales": [{**GOOD_SCALE, "revrse_items": ["a"]}]}, "scales.0.revrse_items: Extra inputs are not permitted"),
    ({"scales": [{**GOOD_SCALE, "method": "median"}]}, "scales.0.method: Input should be 'sum' or 'mean'"),
    ({"scales": [{**GOOD_SCALE, "items": []}]}, "scales.0.items: List should have at least 1 item"),
    ({"scales": [{**GOOD_SCALE, "code": {"code": "x"}}]}, "scales.0.code.system: Field required"),
    ({"scales": [{**GOOD_SCALE, "items": ["a", "a"]}]}, "an item is listed twice"),
    ({"scales": [{**GOOD_SCALE, "reverse_items": ["b"]}]}, "reverse items need item_min and item_max"),
    ({"scales": [{**GOOD_SCALE, "reverse_items": ["z"], "item_min": 0, "item_max": 3}]},
     "reverse items ['z'] are not among the scale's items"),
    ({"scales": [{**GOOD_SCALE, "item_min": 3, "item_max": 3}]}, "item_min must be below item_max"),
    ({"scales": [{**GOOD_SCALE, "missing": {"max_missing": 3}}]}, "max_missing must leave at least one"),
    ({"scales": [{**GOOD_SCALE, "missing": {"max_missing": -1}}]}, "scales.0.missing.max_missing"),
    ({"scales": [{**GOOD_SCALE, "method": "mean", "missing": {"max_missing": 1, "prorate": True}}]},
     "prorate applies to sum scales only"),
    ({"scales": [{**GOOD_SCALE, "bands": [
        {"min": 0, "max": 5, "code": "low", "display_da": "Lav", "display_en": "Low"},
        {"min": 5, "max": 9, "code": "high", "display_da": "Høj", "display_en": "High"}]}]},
     "bands 'low' and 'high' overlap"),
    ({"scales": [{**GOOD_SCALE, "bands": [
        {"min": 5, "max": 9, "code": "high", "display_da": "Høj", "display_en": "High"},
        {"min": 0, "max": 4, "code": "low", "display_da": "Lav", "display_en": "Low"}]}]},
     "bands must be listed from lowest to highest"),
    ({"scales": [{**GOOD_SCALE, "bands": [
        {"min": 9, "max": 5, "code": "odd", "display_da": "X", "display_en": "X"}]}]}, "min 9 is above max 5"),
    ({"scales": [{**GOOD_SCALE, "bands": [{"min": 0, "max": 4, "code": "low", "display_da": "Lav"}]}]},
     "scales.0.bands.0.display_en: Field required"),
    ({"scales": [{**GOOD_SCALE, "subscales": [{**GOOD_SCALE, "method": "total"}]}]},
     "scales.0.subscales.0.method"),
])
def test_malformed_scoring_spec_is_refused_with_a_message_naming_the_problem(spec, message):
    with pytest.raises(ScoringSpecError) as caught:
        parse_spec(spec)
    assert str(caught.value).startswith("Invalid scoring spec: ")
    assert message in str(caught.value)


def test_scoring_a_response_against_a_malformed_stored_spec_raises_rather_than_scoring_wrongly():
    questionnaire = _synthetic({"method": "sum", "items": ["a"], "reverse": ["a"]})
    with pytest.raises(ScoringSpecError, match="reverse: Extra inputs are not permitted"):
        score_response(questionnaire=questionnaire, items=_ints(a=1))


def test_spec_naming_unknown_or_unscorable_items_is_reported_against_its_questionnaire():
    resource = {**NUMERIC_RESOURCE, "item": [*NUMERIC_RESOURCE["item"], {"linkId": "s", "type": "string", "text": "s"}]}
    spec = parse_spec({"scales": [{"code": CODE, "method": "sum", "items": ["a", "nope", "s"]}]})
    assert spec_problems(spec, resource) == [
        "scale 't': no item with linkId 'nope'",
        "scale 't': item 's' has no ordinalValue on its answer options and is not a number",
    ]
