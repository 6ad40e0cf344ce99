"""Real FHIR clients against a live server (issue 21 item 10): fhirpy and fhirclient (SMART's
client-py) read, search and create as third-party software would, and a backend service
generates its own RS384 key pair, is registered, signs its own assertion, gets a token and pulls
a Bulk Data $export — kick-off, polling, every file downloaded and validated."""

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.utils import timezone

from monitoring.models import Reading
from smart.models import SystemClient
from tests.export_data import FREE_TEXT, add_outcome_data, both_validate
from tests.factories import PASSWORD, Cast
from tests.live import LiveStack, start_live_stack
from tests.smart_client import client_assertion, public_jwk, rsa_private_key, token_form

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]



@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """One server (and, in the production shape, one worker) for the module; each test commits
    its own data (live_cast) and registers its own client."""
    root = tmp_path_factory.mktemp("fhir-clients")
    env = {"EXPORT_PSEUDONYM_KEY": "live-test-key", "EXPORT_ROOT": str(root / "exports")}
    with start_live_stack(root, env_overrides=env) as live:
        yield live


def _register(*, client_id: str, scopes: str, identified: bool = False) -> Any:
    """An admin registers the service's public key; the service keeps its private key."""
    private = rsa_private_key()
    system_client = SystemClient(client_id=client_id, name=f"Test {client_id}", allowed_scopes=scopes,
                                 jwks={"keys": [public_jwk(private, kid="live-1")]}, identified_allowed=identified,
                                 identified_purpose="Live test of identified reads" if identified else "")
    system_client.full_clean()
    system_client.save()
    return private


def _backend_token(stack: LiveStack, *, client_id: str, private: Any, scope: str) -> dict[str, Any]:
    """The service's side of SMART Backend Services: discovery, a signed assertion, the token."""
    status, discovery = stack.request("GET", "/.well-known/smart-configuration")
    assert status == 200, discovery
    token_url = discovery["token_endpoint"]
    assertion = client_assertion(private, client_id=client_id, token_url=token_url, kid="live-1")
    body = urllib.parse.urlencode(token_form(assertion, scope)).encode()
    request = urllib.request.Request(token_url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own test server
        return orjson.loads(response.read())


def _person_token(stack: LiveStack, username: str) -> str:
    status, body = stack.request("POST", "/api/v1/auth/token", {"username": username, "password": PASSWORD})
    assert status == 201, body
    return body["token"]


def _identified_reader(stack: LiveStack, name: str) -> str:
    private = _register(client_id=name, scopes="system/Patient.read system/Observation.read", identified=True)
    return _backend_token(stack, client_id=name, private=private,
                          scope="system/Patient.read system/Observation.read")["access_token"]


_MEASURED = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)


def _spo2(patient_id: Any, identifier: str | None = None, value: float = 96) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": _MEASURED.isoformat(),
        "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }
    if identifier:
        resource["identifier"] = [{"system": "urn:test:live", "value": identifier}]
    return resource


# --- fhirpy -----------------------------------------------------------------------------------

def test_fhirpy_reads_a_patient_and_searches_observations_with_a_backend_services_token(
        stack: LiveStack, live_cast: Cast) -> None:
    from fhirpy import SyncFHIRClient

    add_outcome_data(live_cast)
    fhir = SyncFHIRClient(f"{stack.url}/fhir", authorization=f"Bearer {_identified_reader(stack, 'fhirpy')}")
    patient = fhir.reference("Patient", str(live_cast.patient_b.pk)).to_resource()
    assert patient.id == str(live_cast.patient_b.pk)
    both_validate(patient.serialize())
    found = fhir.resources("Observation").search(patient=str(live_cast.patient_b.pk)).fetch()
    expected = Reading.objects.filter(patient=live_cast.patient_b).count()
    assert len([o for o in found if o.id.startswith("reading-")]) == expected
    assert {o.subject.reference for o in found} == {f"Patient/{live_cast.patient_b.pk}"}
    for observation in found:
        both_validate(observation.serialize())


def test_fhirpy_is_refused_what_the_token_scopes_do_not_cover(stack: LiveStack, live_cast: Cast) -> None:
    from fhirpy import SyncFHIRClient
    from fhirpy.base.exceptions import ForbiddenError

    fhir = SyncFHIRClient(f"{stack.url}/fhir", authorization=f"Bearer {_identified_reader(stack, 'narrow')}")
    with pytest.raises(ForbiddenError, match="system/Questionnaire"):
        fhir.resources("Questionnaire").fetch()


def test_fhirpy_creates_an_observation_once_for_its_identifier(stack: LiveStack, live_cast: Cast) -> None:
    from fhirpy import SyncFHIRClient

    fhir = SyncFHIRClient(f"{stack.url}/fhir", authorization=f"Bearer {_person_token(stack, 'patient-a')}")
    identifier = f"fhirpy-{uuid.uuid4()}"
    first = fhir.resource("Observation", **_spo2(live_cast.patient_a.pk, identifier))
    first.save()
    again = fhir.resource("Observation", **_spo2(live_cast.patient_a.pk, identifier))
    again.save()  # the same reading sent twice: the server answers with the first
    assert first.id and again.id == first.id
    assert Reading.objects.filter(patient=live_cast.patient_a, client_id=f"urn:test:live|{identifier}").count() == 1


def test_fhirpy_follows_next_links_through_a_paged_observation_search(stack: LiveStack, live_cast: Cast) -> None:
    from fhirpy import SyncFHIRClient

    add_outcome_data(live_cast)
    fhir = SyncFHIRClient(f"{stack.url}/fhir", authorization=f"Bearer {_identified_reader(stack, 'pager')}")
    search = fhir.resources("Observation").search(patient=str(live_cast.patient_a.pk)).limit(2)
    first_page = search.fetch_raw()
    assert len(first_page.entry) == 2
    assert any(link.relation == "next" for link in first_page.get("link", []))
    everything = search.fetch_all()  # follows the next links
    assert len(everything) > 2
    assert len({o.id for o in everything}) == len(everything)


def test_fhirpy_conditional_create_with_if_none_exist_returns_the_existing_observation(
        stack: LiveStack, live_cast: Cast) -> None:
    from fhirpy import SyncFHIRClient

    fhir = SyncFHIRClient(f"{stack.url}/fhir", authorization=f"Bearer {_person_token(stack, 'patient-a')}")
    identifier = f"conditional-{uuid.uuid4()}"
    created = fhir.resource("Observation", **_spo2(live_cast.patient_a.pk, identifier))
    created.save()
    # FHIR conditional create: a body without the identifier (another value, even), created only
    # if no Observation matches the If-None-Exist search — here one does, so nothing is created.
    body, status = fhir._do_request("post", "Observation", data=_spo2(live_cast.patient_a.pk, value=91),
                                    extra_headers={"If-None-Exist": f"identifier=urn:test:live|{identifier}"},
                                    returning_status=True)
    assert status == 200
    assert body["id"] == created.id
    assert Reading.objects.filter(patient=live_cast.patient_a).count() == 1


# --- fhirclient (SMART on FHIR client-py) ------------------------------------------------------

def _fhirclient(stack: LiveStack, token: str) -> Any:
    from fhirclient import client

    smart = client.FHIRClient(settings={"app_id": "proplatform-live-test", "api_base": f"{stack.url}/fhir/"})
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    return smart


def test_fhirclient_reads_the_capability_statement_a_patient_and_searches_observations(
        stack: LiveStack, live_cast: Cast) -> None:
    from fhirclient.models.observation import Observation
    from fhirclient.models.patient import Patient

    add_outcome_data(live_cast)
    smart = _fhirclient(stack, _identified_reader(stack, "fhirclient"))
    smart.server.get_capability()
    security = smart.server.capabilityStatement.rest[0].security
    assert "SMART-on-FHIR" in [c.code for s in security.service for c in s.coding]
    patient = Patient.read(str(live_cast.patient_a.pk), smart.server)
    assert patient.id == str(live_cast.patient_a.pk)
    found = list(Observation.where(struct={"patient": str(live_cast.patient_a.pk)})
                 .perform_resources_iter(smart.server))
    assert len([o for o in found if o.id.startswith("reading-")]) == \
        Reading.objects.filter(patient=live_cast.patient_a).count()
    assert {o.subject.reference for o in found} == {f"Patient/{live_cast.patient_a.pk}"}


def test_fhirclient_pages_through_an_observation_search(stack: LiveStack, live_cast: Cast) -> None:
    from fhirclient.models.observation import Observation

    add_outcome_data(live_cast)
    smart = _fhirclient(stack, _identified_reader(stack, "fhirclient-pager"))
    pages = list(Observation.where(struct={"patient": str(live_cast.patient_a.pk), "_count": "2"})
                 .perform_iter(smart.server))
    assert len(pages) > 1
    assert all(len(page.entry or []) <= 2 for page in pages)


# --- Bulk Data $export with a backend-services token ------------------------------------------

def _get(url: str, token: str, accept: str = "application/fhir+json") -> tuple[int, Any, bytes]:
    """Status, headers (looked up case-insensitively) and body."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own test server
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_backend_service_signs_its_own_assertion_and_pulls_a_pseudonymised_export(
        stack: LiveStack, live_cast: Cast) -> None:
    add_outcome_data(live_cast)
    private = _register(client_id="rkkp-live", scopes="system/*.read")
    issued = _backend_token(stack, client_id="rkkp-live", private=private, scope="system/*.read")
    assert issued["token_type"] == "bearer" and issued["expires_in"] == 300
    token = issued["access_token"]
    request = urllib.request.Request(f"{stack.url}/fhir/$export?_type=Patient,Observation,QuestionnaireResponse",
                                     headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async",
                                              "Accept": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own test server
        assert response.status == 202
        status_url = response.headers["Content-Location"]
    deadline = time.monotonic() + 90
    while True:
        status, headers, body = _get(status_url, token)
        if status != 202 or time.monotonic() > deadline:
            break
        assert headers.get("X-Progress")
        time.sleep(0.5)
    assert status == 200, body
    manifest = orjson.loads(body)
    assert manifest["requiresAccessToken"] is True
    assert manifest["extension"]["https://proplatform.dk/fhir/bulk/pseudonymised"] is True
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"Patient": 2, "Observation": 10, "QuestionnaireResponse": 2}
    for entry in manifest["output"] + manifest["error"]:
        status, headers, content = _get(entry["url"], token, accept="application/fhir+ndjson")
        assert status == 200, content
        assert headers.get("Content-Type") == "application/fhir+ndjson"
        lines = content.splitlines()
        assert len(lines) == entry["count"]
        for line in lines:
            resource = orjson.loads(line)
            assert resource["resourceType"] == entry["type"]
            both_validate(resource)
        assert FREE_TEXT.encode() not in content
        assert str(live_cast.patient_a.pk).encode() not in content  # pseudonyms, not our ids
    # Without the token the files are not served; with a token of another client neither.
    status, _, _ = _get(manifest["output"][0]["url"], "")
    assert status == 401
    other = _register(client_id="other-live", scopes="system/*.read")
    other_token = _backend_token(stack, client_id="other-live", private=other, scope="system/*.read")["access_token"]
    status, _, _ = _get(manifest["output"][0]["url"], other_token, accept="application/fhir+ndjson")
    assert status == 404
