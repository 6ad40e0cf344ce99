"""Changing a questionnaire's wording, English text and answer colours in the editor (issue 24):
a new version, offered in the same programmes; answers keep theirs."""

import pytest
from django.urls import reverse

from questionnaires.models import Questionnaire

pytestmark = pytest.mark.django_db


def _form_data(page):
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    return form, data


def test_new_wording_english_text_and_an_answer_colour_make_a_new_version_in_the_programme(client, cast):
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-edit", args=[cast.program_a.pk, cast.questionnaire.pk])
    form, data = _form_data(client.get(url))
    first = next(q for q in form.questions if q["colours"])
    data[first["text"]] = "Hvordan har du det i dag?"
    data[first["en"]] = "How are you today?"
    data[first["colours"][-1]] = "red"
    data["reason"] = "Sprogrevision med patientpanelet"
    assert client.post(url, data).status_code == 302
    revised = Questionnaire.objects.filter(url=cast.questionnaire.url).order_by("-created_at").first()
    assert revised.pk != cast.questionnaire.pk and revised.version == "2"
    assert cast.program_a.questionnaires.filter(pk=revised.pk).exists()
    item = next(i for i in revised.definition.items() if i.linkId == first["link_id"])
    assert item.text == "Hvordan har du det i dag?" and item.text_for("en") == "How are you today?"
    assert item.answerOption[-1].severity == "red"


def test_an_empty_question_text_or_no_reason_is_refused_next_to_the_field_and_no_version_is_made(client, cast):
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-edit", args=[cast.program_a.pk, cast.questionnaire.pk])
    form, data = _form_data(client.get(url))
    data[form.questions[0]["text"]] = ""
    data["reason"] = ""
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="da")
    body = page.content.decode()
    assert f'id="id_{form.questions[0]["text"]}-errors"' in body and 'id="id_reason-errors"' in body
    assert Questionnaire.objects.filter(url=cast.questionnaire.url).count() == 1


def test_the_contact_question_is_edited_in_its_own_fieldset_in_danish_and_english_as_a_new_version(client, cast):
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-edit", args=[cast.program_a.pk, cast.questionnaire.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="da")
    assert "Kontaktspørgsmålet" in page.content.decode()
    form, data = _form_data(page)
    assert "contact" not in [q["link_id"] for q in form.questions]  # not twice on the page
    assert data["contact_item"] == "contact" and data["contact_text"] == "Vil du gerne kontaktes af os?"
    data.update(contact_text="Ønsker du, at vi ringer til dig?", contact_en="Shall we call you?",
                contact_colour="red", reason="Patientpanelets formulering")
    assert client.post(url, data).status_code == 302
    revised = Questionnaire.objects.filter(url=cast.questionnaire.url).order_by("-created_at").first()
    contact = revised.definition.by_link_id()["contact"]
    assert (contact.text, contact.text_for("en"), contact.severity) == (
        "Ønsker du, at vi ringer til dig?", "Shall we call you?", "red")


def _without_contact(cast):
    from questionnaires.services import questionnaire_revise

    resource = {**cast.questionnaire.resource}
    resource["item"] = [i for i in resource["item"] if i["linkId"] != "contact"]
    return questionnaire_revise(questionnaire=cast.questionnaire, resource=resource)


def test_a_questionnaire_without_a_contact_question_gets_one_added_at_the_end(client, cast):
    bare = _without_contact(cast)
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-edit", args=[cast.program_a.pk, bare.pk])
    form, data = _form_data(client.get(url))
    assert data["contact_item"] == "+add" and data["contact_en"] == "Do you want us to contact you?"
    data["reason"] = "Alle skemaer skal kunne bede om kontakt"
    assert client.post(url, data).status_code == 302
    revised = Questionnaire.objects.filter(url=cast.questionnaire.url).order_by("-created_at").first()
    last = revised.definition.item[-1]
    assert (last.linkId, last.type, last.text, last.severity) == ("contact", "boolean", "Vil du gerne kontaktes af os?",
                                                                  None)


def test_an_empty_contact_question_is_refused_next_to_it_and_no_version_is_made(client, cast):
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-edit", args=[cast.program_a.pk, cast.questionnaire.pk])
    form, data = _form_data(client.get(url))
    data.update(contact_text=" ", reason="Test")
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_contact_text-errors"' in page.content.decode()
    assert "Kontaktspørgsmålet skal have sin tekst." in page.content.decode()
    assert Questionnaire.objects.filter(url=cast.questionnaire.url).count() == 1


def test_another_yes_no_question_made_the_contact_question_takes_its_link_id_unless_a_rule_uses_it(client, cast):
    from alerts.models import Rule
    from questionnaires.services import questionnaire_revise

    resource = {**cast.questionnaire.resource}
    resource["item"] = [({**i, "linkId": "ring"} if i["linkId"] == "contact" else i) for i in resource["item"]]
    bare = questionnaire_revise(questionnaire=cast.questionnaire, resource=resource)
    client.force_login(cast.admin)
    url = reverse("editor-questionnaire-edit", args=[cast.program_a.pk, bare.pk])
    form, data = _form_data(client.get(url))
    data.update(contact_item="ring", reason="Ring-spørgsmålet er kontaktspørgsmålet")
    rule = Rule.objects.create(program=cast.program_a, kind="answer", name="Vil ringes op", severity="yellow",
                               params={"questionnaire": bare.url, "link_id": "ring", "codes": ["true"]})
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="da")
    assert 'id="id_contact_item-errors"' in page.content.decode() and "Vil ringes op" in page.content.decode()
    rule.delete()
    assert client.post(url, data).status_code == 302
    revised = Questionnaire.objects.filter(url=cast.questionnaire.url).order_by("-created_at").first()
    assert "contact" in revised.definition.by_link_id() and "ring" not in revised.definition.by_link_id()
