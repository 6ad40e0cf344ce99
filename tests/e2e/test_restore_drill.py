"""docs/operations.md's restore procedure, tried: a populated database is dumped, restored into a
new one, and the two compared table by table (row counts and checksums, audit trail included)."""

import os
import subprocess
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import production_shape_required

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live


@pytest.mark.skipif(connection.vendor != "postgresql" and not production_shape_required(),
                    reason="pg_dump/pg_restore: PostgreSQL only (CI runs it)")
def test_a_dumped_and_restored_database_holds_the_same_readings_answers_alerts_and_audit_rows():
    env = {**os.environ, "DRILL_PATIENTS": "4"}
    done = subprocess.run([str(ROOT / "bin" / "restore-drill")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "restore drill OK" in done.stdout
    for table in ("monitoring_reading", "questionnaires_questionnaireresponse", "alerts_alert", "audit_auditevent"):
        line = next(line for line in done.stdout.splitlines() if line.strip().startswith(table))
        assert int(line.split()[1]) > 0, line  # the drill restored rows, not empty tables
