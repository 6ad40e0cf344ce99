"""Error answers (issue 19, item 9): a signed-in user without admin rights who opens the admin gets
a 403 page, not an endless redirect; 403, 404 and 500 pages are the site's layout in Danish by
default, with a way back; FHIR paths still answer OperationOutcome and REST paths JSON; the 500
page reads nothing from the database and cannot fail itself."""

from unittest import mock

import pytest
from django.test import Client, RequestFactory
from django.urls import get_resolver

from proplatform import errors

pytestmark = pytest.mark.django_db


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _is_site_page_in_danish(html: str) -> None:
    assert '<html lang="da">' in html
    assert "Gå til indholdet" in html  # base.html's skip link, in Danish
    assert 'href="/"' in html  # the way back


@pytest.mark.parametrize("who", ["clinician_a", "quality", "patient"])
def test_a_signed_in_user_without_admin_rights_gets_a_403_page_from_the_admin_not_a_redirect(cast, who):
    user = cast.patient_a.user if who == "patient" else getattr(cast, who)
    client = _client(user)
    for path in ("/admin/", "/admin/patients/patient/", "/admin/login/?next=/admin/"):
        answer = client.get(path, follow=True)
        assert answer.status_code == 403, (path, answer.redirect_chain)
        assert answer.redirect_chain == [], answer.redirect_chain
        html = answer.content.decode()
        _is_site_page_in_danish(html)
        assert "Du har ikke adgang til denne side" in html


def test_an_anonymous_visitor_of_the_admin_is_still_sent_to_the_login(cast):
    answer = _client().get("/admin/", follow=True)
    assert answer.status_code == 200
    assert answer.redirect_chain[-1][0].startswith("/login/")
    assert "next=%2Fadmin%2F" in answer.redirect_chain[-1][0]


def test_an_administrator_still_opens_the_admin(cast):
    assert _client(cast.admin).get("/admin/").status_code == 200


def test_a_page_refused_by_role_is_the_sites_403_page_in_danish(cast):
    answer = _client(cast.patient_a.user).get("/triage/")
    assert answer.status_code == 403
    html = answer.content.decode()
    _is_site_page_in_danish(html)
    assert "Log ud" in html  # the signed-in layout: the user's own navigation is there


def test_a_missing_page_is_the_sites_404_page_in_danish_and_in_english_when_asked(cast):
    answer = _client(cast.clinician_a).get("/no-such-page/")
    assert answer.status_code == 404
    html = answer.content.decode()
    _is_site_page_in_danish(html)
    assert "Siden findes ikke" in html
    english = _client(cast.clinician_a).get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Page not found" in english.content.decode()


def test_an_unknown_fhir_path_answers_an_operation_outcome_and_an_unknown_rest_path_json(cast):
    client = _client(cast.clinician_a)
    fhir = client.get("/fhir/NoSuchType/1")
    assert (fhir.status_code, fhir["Content-Type"]) == (404, "application/fhir+json")
    assert fhir.json()["resourceType"] == "OperationOutcome"
    assert fhir.json()["issue"][0]["code"] == "not-found"
    rest = client.get("/api/v1/no-such-thing")
    assert rest.status_code == 404 and rest["Content-Type"] == "application/json"
    assert "detail" in rest.json() and "request_id" in rest.json()


def test_fhir_views_still_answer_their_own_refusals_as_operation_outcomes(cast):
    # A relative-less patient reading another patient: the view's own 404, not the page.
    answer = _client(cast.patient_a.user).get(f"/fhir/Patient/{cast.patient_b.pk}")
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_the_error_handlers_are_the_sites(cast):
    resolver = get_resolver()
    assert resolver.resolve_error_handler(403) is errors.permission_denied
    assert resolver.resolve_error_handler(404) is errors.page_not_found
    assert resolver.resolve_error_handler(500) is errors.server_error


def test_the_500_page_is_the_sites_layout_in_danish_and_reads_nothing_from_the_database(
        django_assert_num_queries):
    request = RequestFactory().get("/patients/")
    with django_assert_num_queries(0):
        answer = errors.server_error(request)
    assert answer.status_code == 500
    html = answer.content.decode()
    _is_site_page_in_danish(html)
    assert "Der skete en fejl" in html


def test_the_500_page_answers_even_when_its_template_cannot_be_rendered(django_assert_num_queries):
    request = RequestFactory().get("/patients/")
    with mock.patch("proplatform.errors.loader.render_to_string", side_effect=ValueError("no manifest entry")), \
            django_assert_num_queries(0):
        answer = errors.server_error(request)
    assert answer.status_code == 500
    assert "Der skete en fejl" in answer.content.decode() and 'href="/"' in answer.content.decode()


def test_a_500_on_a_fhir_path_is_an_operation_outcome():
    answer = errors.server_error(RequestFactory().get("/fhir/Observation"))
    assert (answer.status_code, answer["Content-Type"]) == (500, "application/fhir+json")
    assert b'"fatal"' in answer.content


def test_a_failing_page_answers_the_sites_500_page(cast, client):
    client.raise_request_exception = False
    client.force_login(cast.clinician_a)
    with mock.patch("alerts.views.render", side_effect=RuntimeError("boom")):
        answer = client.get("/triage/")
    assert answer.status_code == 500
    assert "Der skete en fejl" in answer.content.decode()


def test_the_error_pages_do_not_echo_the_address_refused(cast):
    # The address may hold a patient's id; the layout's language switch returns home instead.
    path = f"/patients/{cast.patient_a.pk}/"
    answer = _client(cast.quality).get(path)
    assert answer.status_code == 403
    assert str(cast.patient_a.pk) not in answer.content.decode()
    missing = _client(cast.quality).get(f"/no-such-page/{cast.patient_a.pk}/")
    assert missing.status_code == 404 and str(cast.patient_a.pk) not in missing.content.decode()
