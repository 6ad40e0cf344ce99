import pytest
from django.test import Client

from accounts.models import Role
from audit.models import AuditEvent
from patients.access import patients_for, patients_for_answering
from patients.models import RelativeGrant
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def daughter(cast):
    return make_user("daughter-of-a", Role.RELATIVE, first_name="Dorte", last_name="Datter")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_patient_grants_a_relative_who_then_sees_only_that_patient(cast, daughter):
    assert not patients_for_answering(daughter).exists()
    response = _client(cast.patient_a.user).post(
        "/me/relatives/", {"username": "daughter-of-a", "relationship": "datter"})
    assert response.status_code == 302
    assert list(patients_for_answering(daughter)) == [cast.patient_a]
    assert not patients_for(daughter).exists()  # answering for someone is not reading their record
    assert AuditEvent.objects.filter(user=cast.patient_a.user, action="create",
                                     resource__startswith="RelativeGrant/").exists()
    page = _client(daughter).get("/for/")
    assert page.status_code == 200 and cast.patient_a.given_name in page.content.decode()
    assert cast.patient_b.given_name not in page.content.decode()


def test_revoking_a_grant_removes_access_at_once_and_keeps_the_row(cast, daughter):
    client = _client(cast.patient_a.user)
    client.post("/me/relatives/", {"username": "daughter-of-a", "relationship": "datter"})
    grant = RelativeGrant.objects.get()
    assert client.post(f"/me/relatives/{grant.pk}/revoke/").status_code == 302
    assert not patients_for_answering(daughter).exists()
    grant.refresh_from_db()
    assert grant.revoked_at is not None


@pytest.mark.parametrize(
    ("data", "field"),
    [({"username": "nobody-here", "relationship": "ven"}, "username"),
     ({"username": "clinician-a", "relationship": "ven"}, "username"),  # not a relative's login
     ({"username": "", "relationship": "ven"}, "username"),
     ({"username": "daughter-of-a", "relationship": ""}, "relationship")],
    ids=["unknown-user", "not-a-relative-account", "missing-username", "missing-relationship"],
)
def test_bad_grant_requests_show_the_error_next_to_the_field_and_store_nothing(cast, daughter, data, field):
    response = _client(cast.patient_a.user).post("/me/relatives/", data)
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert f'id="id_{field}-errors"' in response.content.decode()
    assert not RelativeGrant.objects.exists()


def test_granting_the_same_relative_twice_is_refused(cast, daughter):
    client = _client(cast.patient_a.user)
    client.post("/me/relatives/", {"username": "daughter-of-a", "relationship": "datter"})
    response = client.post("/me/relatives/", {"username": "daughter-of-a", "relationship": "datter"})
    assert response.status_code == 200 and response.context["form"].errors["username"]
    assert RelativeGrant.objects.count() == 1


def test_a_patient_cannot_revoke_another_patients_grant(cast, daughter):
    _client(cast.patient_a.user).post("/me/relatives/", {"username": "daughter-of-a", "relationship": "datter"})
    grant = RelativeGrant.objects.get()
    assert _client(cast.patient_b.user).post(f"/me/relatives/{grant.pk}/revoke/").status_code == 404
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_only_patients_manage_relatives_and_only_relatives_see_the_relative_page(cast, daughter):
    assert _client(cast.clinician_a).get("/me/relatives/").status_code == 403
    assert _client(daughter).get("/me/relatives/").status_code == 403
    assert _client(cast.patient_a.user).get("/for/").status_code == 403
    assert _client(daughter).get("/").url.endswith("/for/")
