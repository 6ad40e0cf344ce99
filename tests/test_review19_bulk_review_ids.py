"""From a review of issue 19 (11): POST /reviews/bulk/ with an id beyond the integer range crashes with a 500
(OverflowError in the pk__in query on SQLite); every other new form answers 400/404 to bad input."""

import pytest

pytestmark = pytest.mark.django_db


def test_bulk_review_with_out_of_range_id_is_a_400_not_a_500(cast, client):
    client.raise_request_exception = False
    client.force_login(cast.clinician_a)
    response = client.post("/reviews/bulk/", {"ids": ["9" * 30]})
    assert response.status_code == 400  # observed: 500
