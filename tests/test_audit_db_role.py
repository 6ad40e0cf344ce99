"""The application's database role may read and append the audit trail, and nothing more (issue 20).

The processes connect as a role that owns nothing (``manage.py db_app_role``): the owner's rights
(ALTER, disabling the append-only trigger, TRUNCATE) are out of its reach, and its own grants on
the audit table are SELECT and INSERT."""

import os

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.conftest import production_shape_required

pytestmark = pytest.mark.django_db(transaction=True)

if connection.vendor != "postgresql" and not production_shape_required():
    pytest.skip("database roles exist on PostgreSQL only", allow_module_level=True)

ROLE = f"pp_app_test_{os.getpid()}"


@pytest.fixture
def app_role():
    call_command("db_app_role", ROLE)
    settings = connection.settings_dict
    conn = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                           dbname=settings["NAME"], user=ROLE, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {ROLE}")
            cursor.execute(f"DROP ROLE {ROLE}")


def _insert_audit_row(conn):
    return conn.execute(
        "INSERT INTO audit_auditevent (at, username, role, action, resource, outcome, request_id)"
        " VALUES (now(), 'probe', 'admin', 'read', 'Patient/x', 'allowed', '') RETURNING id").fetchone()[0]


@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET outcome = 'denied'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
    "DROP TABLE audit_auditevent",
])
def test_the_application_role_cannot_change_empty_or_unprotect_the_audit_trail(app_role, statement):
    row = _insert_audit_row(app_role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_role.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute("SELECT outcome FROM audit_auditevent WHERE id = %s", [row])
        assert cursor.fetchone() == ("allowed",)
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_append_only'")
        assert cursor.fetchone() == ("O",)  # still enabled


def test_the_application_role_can_append_and_read_the_audit_trail_and_work_on_every_other_table(app_role):
    row = _insert_audit_row(app_role)
    assert app_role.execute("SELECT count(*) FROM audit_auditevent WHERE id = %s", [row]).fetchone() == (1,)
    # Privileges are checked even when no row matches: these would raise if not granted.
    app_role.execute("UPDATE accounts_user SET last_login = now() WHERE false")
    app_role.execute("DELETE FROM django_session WHERE false")
    app_role.execute("SELECT nextval(pg_get_serial_sequence('monitoring_reading', 'id'))")
    for privilege in ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"):
        assert app_role.execute("SELECT has_table_privilege(%s, 'audit_auditevent', %s)",
                                [ROLE, privilege]).fetchone() == (False,), privilege


def test_the_role_command_refuses_a_name_that_is_not_a_plain_identifier():
    with pytest.raises(CommandError, match="role name"):
        call_command("db_app_role", 'x"; DROP TABLE audit_auditevent; --')
