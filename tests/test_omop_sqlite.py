"""The OMOP export on the embedded demo's SQLite: refused in words, not a traceback. Runs on
either database (on PostgreSQL the connection is made to look like SQLite)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection


def test_on_sqlite_the_omop_export_command_refuses_clearly(monkeypatch):
    if connection.vendor != "sqlite":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    with pytest.raises(CommandError, match="writes into a PostgreSQL schema"):
        call_command("export_omop", "--schema", "omop", stdout=StringIO(), stderr=StringIO())


def test_on_sqlite_no_omop_job_is_started_from_the_page(monkeypatch, db, client):
    from accounts.models import Role
    from exports.models import OmopExportJob
    from tests.factories import make_user

    if connection.vendor != "sqlite":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    client.force_login(make_user("quality", Role.QUALITY))
    response = client.post("/quality/omop/", {"schema": "omop"})
    assert "writes into a PostgreSQL schema" in response.content.decode()
    assert not OmopExportJob.objects.exists()
