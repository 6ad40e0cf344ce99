"""$export through the real stack: daphne and, in the production shape, a real Celery worker
running the export from PostgreSQL with server-side cursors, outside any test transaction."""

import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.export_data import FREE_TEXT, add_outcome_data
from tests.factories import Cast
from tests.live import start_live_stack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_export_kicked_off_over_http_is_run_by_the_worker_and_downloaded_with_the_token(
        live_cast: Cast, tmp_path: Path) -> None:
    add_outcome_data(live_cast)
    env = {"EXPORT_PSEUDONYM_KEY": "live-test-key", "EXPORT_ROOT": str(tmp_path / "exports")}
    with start_live_stack(tmp_path, env_overrides=env) as stack:
        status, body = stack.request("POST", "/api/v1/auth/token",
                                     {"username": "quality", "password": "test-pass-9876"})
        assert status == 201, body
        auth = {"Authorization": f"Bearer {body['token']}"}
        request = urllib.request.Request(stack.url + "/fhir/$export?_type=Patient,Observation",
                                         headers={**auth, "Prefer": "respond-async",
                                                  "Accept": "application/fhir+json"})
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own test server
            assert response.status == 202
            status_url = response.headers["Content-Location"]
        deadline = time.monotonic() + 60
        while True:
            status, manifest = stack.request("GET", status_url.removeprefix(stack.url), headers=auth)
            if status == 200 or time.monotonic() > deadline:
                break
            assert status == 202
            time.sleep(0.5)
        assert status == 200, manifest
        counts = {o["type"]: o["count"] for o in manifest["output"]}
        assert counts == {"Patient": 2, "Observation": 10}
        file_request = urllib.request.Request(manifest["output"][1]["url"],
                                              headers={**auth, "Accept": "application/fhir+ndjson"})
        with urllib.request.urlopen(file_request, timeout=20) as response:  # noqa: S310
            lines = response.read().splitlines()
        assert len(lines) == 10
        assert all(orjson.loads(line)["resourceType"] == "Observation" for line in lines)
        assert FREE_TEXT.encode() not in b"".join(lines)
        # Without the token the file is not served.
        status, _ = stack.request("GET", manifest["output"][1]["url"].removeprefix(stack.url))
        assert status == 401
