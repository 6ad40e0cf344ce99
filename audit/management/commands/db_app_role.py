"""Give the application's processes a PostgreSQL role of their own that cannot change the audit trail.

The owner of the tables (the role ``migrate`` runs as) keeps every right; the web, ws, worker and
beat processes connect as the role this command sets up. On every table it may select, insert,
update and delete — except ``audit_auditevent``, where it may only select and insert. It owns
nothing, so it cannot ``ALTER`` the table, disable the append-only trigger (migration audit 0002)
or ``TRUNCATE`` it. Run it again after every ``migrate`` (``bin/production-local`` does): default
privileges cover tables the owner creates later, this covers tables created before the role.

    manage.py db_app_role proplatform_app [--password-env APP_DATABASE_PASSWORD]
"""

import os
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg import sql

AUDIT_TABLE = "audit_auditevent"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def app_role_grant(role: str, password: str | None = None) -> None:
    """Create ``role`` (if needed) and set its rights as described above, in one transaction."""
    if connection.vendor != "postgresql":
        raise CommandError("The application role is a PostgreSQL feature; the embedded shape has one user.")
    if not _NAME.match(role):
        raise CommandError(f"A role name is lower-case letters, digits and _: {role!r}")
    ident = sql.Identifier(role)
    with connection.cursor() as cursor:
        owner = connection.settings_dict["USER"] or "postgres"
        if owner == role:
            raise CommandError("Run this as the tables' owner, not as the application role itself.")
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(ident))
        if password:
            cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
        database = sql.Identifier(connection.settings_dict["NAME"])
        for statement in (
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
            # The audit trail: read and append, nothing else.
            "REVOKE ALL ON TABLE " + AUDIT_TABLE + " FROM {role}",
            "GRANT SELECT, INSERT ON TABLE " + AUDIT_TABLE + " TO {role}",
        ):
            cursor.execute(sql.SQL(statement).format(db=database, role=ident))


class Command(BaseCommand):
    help = "Create or update the PostgreSQL role the application processes use (audit trail insert-only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role")
        parser.add_argument("--password-env", default="",
                            help="an environment variable with the role's password (never on the command line)")

    def handle(self, *args: Any, role: str, password_env: str, **options: Any) -> None:
        password = os.environ.get(password_env) if password_env else None
        if password_env and not password:
            raise CommandError(f"${password_env} is empty or not set.")
        app_role_grant(role, password)
        self.stdout.write(f"{role}: every table read/write, {AUDIT_TABLE} select and insert only.")
