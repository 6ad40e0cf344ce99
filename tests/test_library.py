"""The shipped questionnaire library (questionnaires/library): valid FHIR, bilingual, ending with the
contact question, scoring that fits, and a load command that can run twice."""

from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire

from questionnaires import library
from questionnaires.models import Questionnaire
from questionnaires.scoring import parse_spec, spec_problems
from questionnaires.services import questionnaire_import

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
SEVERITY = "https://proplatform.example/fhir/StructureDefinition/answer-severity"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
SHIPPED = ["esas-r", "gad-7", "hf-daily", "lung-followup", "ovarian-followup", "phq-9"]
NAMES = library.names()


def _walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk(item.get("item", []))


def _english(element: dict[str, Any] | None) -> str | None:
    """The English translation carried by a FHIR primitive's extension element (``_text``)."""
    for ext in (element or {}).get("extension", []):
        if ext["url"] == TRANSLATION:
            parts = {e["url"]: e for e in ext["extension"]}
            if parts["lang"]["valueCode"] == "en":
                return parts["content"]["valueString"]
    return None


def _options(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for item in _walk(library.load(name)["item"]):
        for option in item.get("answerOption", []):
            yield item, option


def test_the_library_ships_the_six_instruments_and_nothing_whose_licence_forbids_it():
    assert NAMES == SHIPPED
    # EORTC QLQ-C30 (and its modules) may not be redistributed without EORTC's agreement.
    assert not [n for n in NAMES if "eortc" in n or "qlq" in n]


def test_every_instrument_has_a_source_and_licence_note():
    sources = (Path(library.__file__).parent / "SOURCES.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"## {name}" in sources, name


@pytest.mark.parametrize("name", NAMES)
def test_instrument_is_a_valid_fhir_r4_questionnaire(name):
    resource = library.load(name)
    parsed = FhirQuestionnaire.model_validate(resource)
    assert parsed.url == f"https://proplatform.example/fhir/Questionnaire/{name}"
    assert (parsed.version, parsed.status, resource["language"]) == ("1", "active", "da")
    assert parsed.title and _english(resource.get("_title"))


@pytest.mark.parametrize("name", NAMES)
def test_instrument_ends_with_the_required_yes_no_contact_question(name):
    last = library.load(name)["item"][-1]
    assert (last["linkId"], last["type"], last["required"]) == ("contact", "boolean", True)
    assert last["text"] == "Vil du gerne kontaktes af os?"
    assert _english(last.get("_text")) == "Do you want us to contact you?"


@pytest.mark.parametrize("name", NAMES)
def test_every_item_has_danish_text_and_an_english_translation(name):
    for item in _walk(library.load(name)["item"]):
        english = _english(item.get("_text"))
        assert item.get("text"), item["linkId"]
        assert english, item["linkId"]
        assert english != item["text"], item["linkId"]


@pytest.mark.parametrize("name", NAMES)
def test_every_choice_item_offers_its_own_coded_options_in_both_languages(name):
    for item in _walk(library.load(name)["item"]):
        if item["type"] not in ("choice", "open-choice"):
            assert "answerOption" not in item, item["linkId"]
            continue
        assert "answerValueSet" not in item, item["linkId"]  # self-contained: no value set to expand
        assert item.get("answerOption"), item["linkId"]
        codes = []
        for option in item["answerOption"]:
            coding = option["valueCoding"]
            assert coding["system"] and coding["code"] and coding["display"], item["linkId"]
            assert _english(coding.get("_display")), (item["linkId"], coding["code"])
            codes.append(coding["code"])
        assert len(set(codes)) == len(codes), item["linkId"]


@pytest.mark.parametrize("name", NAMES)
def test_link_ids_are_unique_within_an_instrument(name):
    link_ids = [item["linkId"] for item in _walk(library.load(name)["item"])]
    assert len(set(link_ids)) == len(link_ids)


@pytest.mark.parametrize("name", NAMES)
def test_severity_hints_are_only_yellow_or_red(name):
    hints = [ext["valueCode"] for item in _walk(library.load(name)["item"])
             for holder in (item, *item.get("answerOption", []))
             for ext in holder.get("extension", []) if ext["url"] == SEVERITY]
    assert set(hints) <= {"yellow", "red"}


def test_any_thought_of_death_or_self_harm_on_phq9_item_9_is_marked_red():
    item9 = [(o["valueCoding"]["code"], o) for item, o in _options("phq-9") if item["linkId"] == "phq9-9"]
    assert [code for code, _ in item9] == ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
    for code, option in item9:
        hints = [e["valueCode"] for e in option.get("extension", []) if e["url"] == SEVERITY]
        assert hints == ([] if code == "LA6568-5" else ["red"]), code


def test_phq9_and_gad7_items_carry_their_loinc_codes():
    codes = {item["linkId"]: item["code"][0]["code"] for name in ("phq-9", "gad-7")
             for item in _walk(library.load(name)["item"]) if item.get("code")}
    assert codes["phq9"] == "44249-1" and codes["phq9-1"] == "44250-9" and codes["phq9-9"] == "44260-8"
    assert codes["gad7"] == "69737-5" and codes["gad7-1"] == "69725-0" and codes["gad7-7"] == "69736-7"


def test_the_link_ids_the_demo_rules_match_on_are_kept():
    lung = {i["linkId"]: i for i in _walk(library.load("lung-followup")["item"])}
    hf = {i["linkId"]: i for i in _walk(library.load("hf-daily")["item"])}
    assert lung["haemoptysis"]["type"] == "boolean"
    assert "much-worse" in [o["valueCoding"]["code"] for o in hf["breathless"]["answerOption"]]
    assert list(hf) == ["intro", "breathless", "swelling", "pillows", "contact"]


def test_the_lung_follow_up_asks_about_all_twelve_moovcare_symptoms():
    link_ids = {i["linkId"] for i in _walk(library.load("lung-followup")["item"])}
    assert {"weight", "appetite", "fatigue", "pain", "cough", "breathless", "mood", "fever", "voice",
            "haemoptysis", "face-neck-swelling", "new-lump"} <= link_ids


@pytest.mark.parametrize("name", NAMES)
def test_scoring_spec_parses_and_names_only_scorable_items_of_its_instrument(name):
    raw = library.load_scoring(name)
    if raw is None:
        assert name in ("hf-daily", "lung-followup", "ovarian-followup")
        return
    spec = parse_spec(raw)
    assert spec_problems(spec, library.load(name)) == []
    # every scored choice option has an ordinal value
    scored = spec.link_ids()
    for item, option in _options(name):
        if item["linkId"] in scored:
            assert any(e["url"] == ORDINAL for e in option.get("extension", [])), item["linkId"]


# --- importing ------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("name", NAMES)
def test_every_instrument_imports_through_the_import_service(name):
    stored = questionnaire_import(resource=library.load(name))
    assert stored.url.endswith(f"/{name}") and stored.version == "1"


@pytest.mark.django_db
def test_load_instruments_twice_stores_each_instrument_once_with_its_scoring():
    call_command("load_instruments", stdout=StringIO())
    first = list(Questionnaire.objects.order_by("pk").values("pk", "url", "version", "scoring", "resource"))
    out = StringIO()
    call_command("load_instruments", stdout=out)
    assert list(Questionnaire.objects.order_by("pk").values("pk", "url", "version", "scoring", "resource")) == first
    assert len(first) == len(SHIPPED)
    assert out.getvalue().count("already up to date") == len(SHIPPED)
    by_url = {row["url"].rsplit("/", 1)[-1]: row for row in first}
    assert by_url["phq-9"]["scoring"] == library.load_scoring("phq-9")
    assert by_url["hf-daily"]["scoring"] is None


@pytest.mark.django_db
def test_load_instruments_attaches_scoring_to_an_instrument_imported_earlier_without_it():
    earlier = questionnaire_import(resource=library.load("phq-9"))
    assert earlier.scoring is None
    call_command("load_instruments", stdout=StringIO())
    earlier.refresh_from_db()
    assert earlier.scoring == library.load_scoring("phq-9")
    assert Questionnaire.objects.filter(url=earlier.url).count() == 1


@pytest.mark.django_db
def test_load_instruments_refuses_to_change_the_scoring_of_a_stored_version():
    stored = questionnaire_import(resource=library.load("gad-7"))
    other = library.load_scoring("gad-7")
    other["scales"][0]["missing"] = {"max_missing": 0, "prorate": False}
    Questionnaire.objects.filter(pk=stored.pk).update(scoring=other)
    with pytest.raises(CommandError, match="gad-7: version 1 is stored with other scoring"):
        call_command("load_instruments", stdout=StringIO())
    stored.refresh_from_db()
    assert stored.scoring == other
