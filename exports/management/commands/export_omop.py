"""Export into an OMOP CDM 5.4 schema on PostgreSQL (issue 25, ADR 0019):

    manage.py export_omop --schema omop [--since 2026-12-01T00:00:00Z] [--cohort 3] [--release-date 2026-12-07]

Creates the schema from the official DDL if it does not exist; otherwise updates it (with
--since: only source rows received or changed since then, plus everything of persons new to
it). Prints the rows per table and the checks; a failed check fails the command and keeps
nothing. The same service runs as a Celery job for quality staff (/exports/omop/)."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exports.omop.export import OmopCheckFailed, OmopError, omop_export
from exports.privacy import PseudonymKeyMissing


class Command(BaseCommand):
    help = "Export to an OMOP CDM 5.4 schema (PostgreSQL only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schema", required=True, help="target schema (created from the official DDL)")
        parser.add_argument("--since", default="", help="incremental: ISO instant with zone, e.g. 2026-12-01T00:00:00Z")
        parser.add_argument("--cohort", default="", help="cohort id: export its members only")
        parser.add_argument("--release-date", default="", help="cdm_source release date (default: today)")

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options["since"]:
            try:
                since = parse_datetime(options["since"])
            except ValueError:
                since = None
            if since is None or since.tzinfo is None:
                raise CommandError("--since must be an ISO instant with a time zone, e.g. 2026-12-01T00:00:00Z.")
        cohort_id = None
        if options["cohort"]:
            if not options["cohort"].isdigit():
                raise CommandError("--cohort must be a cohort's number.")
            cohort_id = int(options["cohort"])
        try:
            release = date.fromisoformat(options["release_date"]) if options["release_date"] else timezone.localdate()
        except ValueError as exc:
            raise CommandError("--release-date must be a date, e.g. 2026-12-07.") from exc

        def progress(step: str, percent: int) -> None:
            self.stderr.write(f"{percent:3d} % {step}")

        try:
            result = omop_export(schema=options["schema"], since=since, cohort_id=cohort_id, release_date=release,
                                 progress=progress)
        except (OmopError, PseudonymKeyMissing) as exc:
            raise CommandError(str(exc)) from exc
        except OmopCheckFailed as exc:
            self._print(exc.result)
            raise CommandError(str(exc)) from exc
        self._print(result)
        self.stdout.write("all checks passed")

    def _print(self, result: dict[str, Any]) -> None:
        for table, count in result["tables"].items():
            self.stdout.write(f"{table}: {count}")
        for check in result["checks"]:
            mark = "ok " if check["ok"] else "FAILED"
            self.stdout.write(f"{mark} {check['name']} {check['detail']}".rstrip())
