"""Issue 19: the receipt reflects the answers. A red answer leads with the programme's urgent
advice, its phone number and 112; a contact request says when the team calls; decided from the
answers at submission, not from whether the rules have run yet."""

import pytest

from alerts.models import Alert
from patients.models import Region
from questionnaires import library
from questionnaires.services import questionnaire_import, response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def phq9(cast):
    questionnaire = questionnaire_import(resource=library.load("phq-9"))
    cast.program_a.questionnaires.add(questionnaire)
    cast.program_a.department_phone = "78 45 12 34"
    cast.program_a.save()
    return questionnaire


def _send_and_read_receipt(cast, client, questionnaire, answers, lang="da"):
    response_submit(patient=cast.patient_a, questionnaire=questionnaire,
                    items=response_items(questionnaire, answers), author=cast.patient_a.user)
    client.force_login(cast.patient_a.user)
    page = client.get(f"/me/questionnaires/{questionnaire.pk}/thanks/", HTTP_ACCEPT_LANGUAGE=lang)
    assert page.status_code == 200
    return page.content.decode().split("<main", 1)[1]


def test_phq9_item_9_alone_gives_the_urgent_advice_with_the_departments_number_and_112_first(cast, client, phq9):
    html = _send_and_read_receipt(cast, client, phq9, {"phq9-9": "LA6569-3"})
    assert "<h1>Ring til afdelingen i dag</h1>" in html
    advice = html.split('id="urgent-advice"', 1)[1].split("</div>", 1)[0]
    assert "vi skal tale med dig i dag" in advice
    assert 'href="tel:78451234"' in advice and "Ring 78 45 12 34" in advice
    assert "ring 112" in advice
    assert "hverdag" not in html  # not the standard "within 2 weekdays"
    # The advice comes before anything else on the page.
    assert html.index("Ring til afdelingen i dag") < html.index("Dine svar er sendt")


def test_the_urgent_advice_names_the_regions_out_of_hours_number_from_its_one_home(cast, client, phq9):
    cast.team_a.region = Region.HOVEDSTADEN
    cast.team_a.save()
    html = _send_and_read_receipt(cast, client, phq9, {"phq9-9": "LA6571-9"})
    assert "Akuttelefonen på 1813" in html.split('id="urgent-advice"', 1)[1]


def test_the_receipt_does_not_wait_for_the_rules(cast, client, phq9, monkeypatch):
    # No evaluation at all (a worker that is down): the patient is still told to call today.
    monkeypatch.setattr("alerts.evaluation.dispatch._send", lambda inbox_ids: None)
    html = _send_and_read_receipt(cast, client, phq9, {"phq9-9": "LA6570-1"})
    assert not Alert.objects.exists()
    assert "Ring til afdelingen i dag" in html and "ring 112" in html


def test_a_contact_request_says_when_the_team_calls_and_gives_the_number(cast, client, phq9):
    html = _send_and_read_receipt(cast, client, phq9, {"contact": True})
    assert "<h1>Vi ringer til dig</h1>" in html
    advice = html.split('id="contact-advice"', 1)[1].split("</div>", 1)[0]
    assert "En sygeplejerske ringer til dig inden for 1 hverdag." in advice
    assert "Ring 78 45 12 34" in advice and "urgent-advice" not in html
    assert "inden for 2 hverdage" not in html


def test_the_programmes_own_texts_are_used_in_danish_and_in_english(cast, client, phq9):
    cast.program_a.urgent_text_da = "Ring straks til Psykiatrisk Akutmodtagelse."
    cast.program_a.urgent_text_en = "Call the Psychiatric Emergency Unit at once."
    cast.program_a.save()
    assert "Ring straks til Psykiatrisk Akutmodtagelse." in _send_and_read_receipt(
        cast, client, phq9, {"phq9-9": "LA6569-3"})
    english = _send_and_read_receipt(cast, client, phq9, {"phq9-9": "LA6569-3"}, lang="en")
    assert "Call the Psychiatric Emergency Unit at once." in english and "Call the department today" in english
    assert "call 112" in english


def test_ordinary_answers_keep_the_standard_receipt(cast, client, phq9):
    html = _send_and_read_receipt(cast, client, phq9, {"phq9-1": "LA6571-9", "phq9-2": "LA6571-9"})
    assert "inden for 2 hverdage" in html
    assert "urgent-advice" not in html and "contact-advice" not in html


def test_a_yellow_answer_alone_keeps_the_standard_receipt(cast, client):
    hf = cast.questionnaire  # hf-daily: "a little more breathless" is yellow
    html = _send_and_read_receipt(cast, client, hf, {"breathless": hf.definition.by_link_id()["breathless"]
                                                     .answerOption[1].code})
    assert "inden for 2 hverdage" in html and "urgent-advice" not in html


def test_a_relative_who_answers_for_the_patient_gets_the_urgent_advice_too(cast, client, phq9):
    from accounts.models import Role
    from patients.models import RelativeGrant
    from tests.factories import make_user

    daughter = make_user("daughter-of-a", Role.RELATIVE)
    RelativeGrant.objects.create(patient=cast.patient_a, relative=daughter, relationship="datter")
    response_submit(patient=cast.patient_a, questionnaire=phq9,
                    items=response_items(phq9, {"phq9-9": "LA6569-3"}), author=daughter)
    client.force_login(daughter)
    assert client.post(f"/for/{cast.patient_a.pk}/").status_code == 302
    html = client.get(f"/me/questionnaires/{phq9.pk}/thanks/").content.decode()
    assert "Ring til afdelingen i dag" in html and "ring 112" in html
