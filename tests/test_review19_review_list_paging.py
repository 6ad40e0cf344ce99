"""From a review of issue 19 (8): /reviews/ shows at most LIST_MAX (300) responses, red first and within a colour the
earliest due first, with no way to page on. Migration alerts.0005 puts every response ever submitted
on the queue with its historic due time, so after deployment hundreds of old red/yellow answers
(which cannot be cleared in bulk) fill the page, and a patient's new "contact me" answer is not on
it at all — only in the "N more wait" count."""

from datetime import timedelta

import pytest
from django.utils import timezone

from questionnaires.models import QuestionnaireResponse
from questionnaires.services import response_submit
from tests.factories import response_items

pytestmark = pytest.mark.django_db


def test_a_new_contact_request_is_on_the_review_list_page(cast, client):
    old = timezone.now() - timedelta(days=200)
    items = response_items(cast.questionnaire, {"contact": False})
    QuestionnaireResponse.objects.bulk_create([
        QuestionnaireResponse(patient=cast.patient_a, questionnaire=cast.questionnaire, items=items,
                              authored_at=old, received_at=old, review_due_at=old + timedelta(days=2),
                              review_colour="red", author=cast.patient_a.user)
        for _ in range(300)])  # what migration 0005 leaves for a year of a busy programme
    new = response_submit(patient=cast.patient_a, questionnaire=cast.questionnaire,
                          items=response_items(cast.questionnaire, {"contact": True}), author=cast.patient_a.user)
    assert new.review_colour == "yellow"
    client.force_login(cast.clinician_a)
    # Newest first: the new request is at the top of the first page.
    newest = client.get("/reviews/", {"order": "new"}).content.decode()
    assert f"#response-{new.pk}" in newest
    # Most urgent first (the default): behind the backlog, but reachable by paging.
    first = client.get("/reviews/").content.decode()
    assert f"#response-{new.pk}" not in first and 'rel="next"' in first
    last = client.get("/reviews/", {"page": "4"}).content.decode()
    assert f"#response-{new.pk}" in last
    assert client.get("/reviews/", {"page": "x\x00"}).status_code == 200  # a bad page number: the first
