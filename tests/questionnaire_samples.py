"""Questionnaires the questionnaire tests share (FHIR R4 JSON)."""

import json
from pathlib import Path
from typing import Any

# HL7 SDC test forms, copied into the repository with their source and licence (fixtures/sdc/README.md).
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "sdc"
EXT = "http://hl7.org/fhir/StructureDefinition/"


def sdc_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"questionnaire-sdc-test-{name}.json").read_text(encoding="utf-8"))


def translated(da: str, en: str) -> dict[str, Any]:
    return {"text": da, "_text": {"extension": [{"url": EXT + "translation", "extension": [
        {"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": en}]}]}}


def coding(code: str, display: str, ordinal: int) -> dict[str, Any]:
    return {"valueCoding": {"system": "https://proplatform.example/fhir/CodeSystem/test", "code": code,
                            "display": display},
            "extension": [{"url": EXT + "ordinalValue", "valueDecimal": ordinal}]}


SLIDER = {"url": EXT + "questionnaire-itemControl",
          "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control",
                                               "code": "slider"}]}}

# Four pages: symptoms, pain details (only when the pain is severe), breathing, contact.
MULTI_PAGE: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "url": "https://proplatform.example/fhir/Questionnaire/test-multi-page",
    "version": "1",
    "title": "Symptomtjek",
    "status": "active",
    "language": "da",
    "item": [
        {"linkId": "symptoms", "type": "group", **translated("Smerter", "Pain"), "item": [
            {"linkId": "pain", "type": "choice", "required": True,
             **translated("Har du smerter?", "Are you in pain?"),
             "answerOption": [coding("none", "Nej", 0), coding("mild", "Lidt", 1), coding("severe", "Meget", 2)]},
            {"linkId": "pain-where", "type": "string", "maxLength": 100,
             **translated("Hvor gør det ondt?", "Where does it hurt?"),
             "enableWhen": [{"question": "pain", "operator": "=", "answerCoding": {"code": "mild"}},
                            {"question": "pain", "operator": "=", "answerCoding": {"code": "severe"}}],
             "enableBehavior": "any"},
        ]},
        {"linkId": "pain-details", "type": "group", **translated("Stærke smerter", "Severe pain"),
         "enableWhen": [{"question": "pain", "operator": "=", "answerCoding": {"code": "severe"}}],
         "item": [
             {"linkId": "pain-score", "type": "integer", "required": True, "extension": [
                 SLIDER, {"url": EXT + "minValue", "valueInteger": 0}, {"url": EXT + "maxValue", "valueInteger": 10}],
              **translated("Hvor stærke er smerterne (0-10)?", "How strong is the pain (0-10)?")},
         ]},
        {"linkId": "breathing", "type": "group", **translated("Vejrtrækning", "Breathing"), "item": [
            {"linkId": "breathless", "type": "boolean", "required": True,
             **translated("Er du forpustet?", "Are you short of breath?")},
            {"linkId": "temperature", "type": "decimal",
             "extension": [{"url": EXT + "minValue", "valueDecimal": 34},
                           {"url": EXT + "maxValue", "valueDecimal": 43}],
             **translated("Din temperatur (°C)", "Your temperature (°C)")},
        ]},
        {"linkId": "contact", "type": "boolean", "required": True,
         **translated("Vil du gerne kontaktes af os?", "Do you want us to contact you?")},
    ],
}
