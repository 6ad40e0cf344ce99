"""Issue 19 review: a red answer or a contact request given in a follow-up question nested under
another question's answer (where FHIR R4 puts it) must light the receipt's safety signals exactly as
at top level. The rules and the review colour walk nested answers; the receipt must not be the one
reader that misses them."""

from questionnaires.definition import EXT_ANSWER_SEVERITY, parse
from questionnaires.safety import safety_signals

RED = [{"url": EXT_ANSWER_SEVERITY, "valueCode": "red"}]
SYSTEM = "urn:example:pain"


def _definition():
    return parse({
        "resourceType": "Questionnaire", "status": "active", "url": "urn:example:q",
        "item": [{
            "linkId": "pain", "type": "boolean", "text": "Har du smerter?",
            "item": [
                {"linkId": "pain-level", "type": "choice", "text": "Hvor slemt?", "answerOption": [
                    {"valueCoding": {"system": SYSTEM, "code": "mild", "display": "Let"}},
                    {"valueCoding": {"system": SYSTEM, "code": "worst", "display": "Uudholdeligt"},
                     "extension": RED},
                ]},
                {"linkId": "contact", "type": "boolean", "text": "Vil du gerne kontaktes af os?"},
            ],
        }],
    })


def _nested(level: str, contact: bool):
    return [{"linkId": "pain", "answer": [{"valueBoolean": True, "item": [
        {"linkId": "pain-level", "answer": [{"valueCoding": {"system": SYSTEM, "code": level}}]},
        {"linkId": "contact", "answer": [{"valueBoolean": contact}]},
    ]}]}]


def test_a_red_answer_nested_under_a_question_reaches_the_receipt():
    signals = safety_signals(_definition(), _nested("worst", contact=False), "da")
    assert [(a.link_id, a.answer, a.severity) for a in signals.red] == [("pain-level", "Uudholdeligt", "red")]
    assert signals.contact is None and signals.any


def test_a_contact_request_nested_under_a_question_reaches_the_receipt():
    signals = safety_signals(_definition(), _nested("mild", contact=True), "da")
    assert signals.red == []
    assert signals.contact is not None and signals.contact.severity == "yellow"


def test_ordinary_nested_answers_and_malformed_nesting_give_no_signal():
    assert not safety_signals(_definition(), _nested("mild", contact=False), "da").any
    broken = [{"linkId": "pain", "answer": [{"valueBoolean": True, "item": "not a list"}, "junk"]}, 7]
    assert not safety_signals(_definition(), broken, "da").any
