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
