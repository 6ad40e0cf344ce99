"""Dashboard reads go to the replica when DATABASE_REPLICA_URL is set — tested by pointing it at
the same server (the replica alias mirrors the test database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform \\
    DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:5432/proplatform \\
        .venv/bin/python -m pytest tests/test_replica.py

Without it, the router is checked on its own and the page still reads from default."""

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from outcomes.replica import DashboardReplicaRouter, reads_from_replica
from patients.models import Patient
from tests.test_indicator_pages import _client, world  # noqa: F401

REPLICA = "replica" in settings.DATABASES


def test_the_router_sends_only_reads_made_inside_a_dashboard_view_to_the_replica(settings):
    settings.DATABASES = {**settings.DATABASES, "replica": settings.DATABASES["default"]}
    router = DashboardReplicaRouter()
    assert router.db_for_read(Patient) is None
    assert reads_from_replica(lambda: router.db_for_read(Patient))() == "replica"
    assert reads_from_replica(lambda: router.db_for_write(Patient))() is None
    assert router.allow_migrate("replica", "patients") is False and router.allow_migrate("default", "x") is None


@pytest.mark.skipif(not REPLICA, reason="DATABASE_REPLICA_URL is not set")
@pytest.mark.django_db(databases=["default", "replica"], transaction=True)
def test_an_indicator_page_reads_through_the_replica_and_audits_on_default(world):  # noqa: F811
    with CaptureQueriesContext(connections["replica"]) as on_replica, \
            CaptureQueriesContext(connections["default"]) as on_default:
        answer = _client(world.quality).get("/quality/indicators/response-rate-3m/")
    assert answer.status_code == 200 and "52,0 %" in answer.content.decode()
    assert any("patients_treatmentepisode" in q["sql"] for q in on_replica.captured_queries)
    assert not any("patients_treatmentepisode" in q["sql"] for q in on_default.captured_queries)
    assert any("INSERT" in q["sql"] and "audit" in q["sql"] for q in on_default.captured_queries)
