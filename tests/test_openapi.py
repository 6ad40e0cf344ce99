from django.core.management import call_command
from django.test import Client


def test_openapi_schema_generates_without_warnings_and_validates(tmp_path) -> None:
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/readings", "/api/v1/auth/token", "/api/v1/alerts/{alert_id}/acknowledge"):
        assert path in text
    # error responses are documented, not just the happy path
    assert "'409':" in text and "'404':" in text and "'401':" in text


def test_api_docs_page_is_served_without_external_assets(db) -> None:
    response = Client().get("/api/docs/", secure=True)
    assert response.status_code == 200
    assert b"swagger-ui" in response.content.lower()
    assert b"cdn.jsdelivr" not in response.content and b"unpkg.com" not in response.content


def _published() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_published_path_is_one_the_server_routes_bulk_data_with_its_dollar():
    import re

    from django.urls import Resolver404, resolve

    paths = _published()["paths"]
    bulk = sorted(p for p in paths if "export" in p)
    assert bulk == ["/fhir/$export", "/fhir/$export-file/{job_id}/{name}", "/fhir/$export-status/{job_id}",
                    "/fhir/Group/{group_id}/$export", "/fhir/Patient/$export"]
    for path in paths:
        concrete = re.sub(r"\{[^}]+\}", "0b7a2e2c-6f51-4c8e-9a7f-2d0f5c9b1e11", path)
        concrete = concrete.replace("{", "")
        try:
            resolve(concrete)
        except Resolver404:
            if any(f"{{{name}}}" in path for name in ("alert_id", "snooze_id", "token_id")):  # int converters
                resolve(re.sub(r"\{[^}]+\}", "1", path))
            else:
                raise


def test_the_error_answers_are_published_with_their_shapes():
    paths = _published()["paths"]
    token = paths["/api/v1/auth/token"]["post"]["responses"]
    assert set(token) >= {"201", "400", "401", "429", "503"}
    flags = paths["/fhir/Flag"]["get"]["responses"]
    outcome = {"$ref": "#/components/schemas/OperationOutcome"}
    assert flags["403"]["content"]["application/fhir+json"]["schema"] == outcome
    assert "404" in paths["/api/v1/alerts/{alert_id}/acknowledge"]["post"]["responses"]


def test_a_route_no_view_matches_is_answered_in_the_apis_shape(db):
    fhir = Client().get("/fhir/$export-status/not-a-uuid")
    assert fhir.status_code == 404 and fhir.json()["resourceType"] == "OperationOutcome"
    api = Client().get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.json()["request_id"]
    assert "text/html" in Client().get("/nothing-here/")["Content-Type"]


def test_every_fhir_path_the_schema_publishes_reaches_its_own_view_not_the_fallback():
    # drf-spectacular drops a route's "$" (it reads it as a regex anchor): a FHIR operation
    # published without it sent clients, and the schema fuzzer, to the 405 fallback.
    import re

    from django.urls import resolve
    from drf_spectacular.generators import SchemaGenerator

    paths = [p for p in SchemaGenerator().get_schema(request=None, public=True)["paths"] if p.startswith("/fhir/")]
    assert "/fhir/Measure/{measure_id}/$evaluate-measure" in paths
    for published in paths:
        # an export job's id is a UUID, every other parameter takes "1"
        concrete = re.sub(r"\{job_id\}", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", published)
        concrete = re.sub(r"\{[^}]+\}", "1", concrete)
        assert resolve(concrete).url_name != "fhir-fallback", published
