"""Run a Bulk $export from the shell, with a progress bar:

    manage.py export_fhir --user quality1 [--type Observation,Patient] [--since 2026-01-01T00:00:00Z]
        [--group 3] [--identified --purpose "..."] [--date-shift]

The same service as /fhir/$export (the same scope, limit, audit and files), run in this process
instead of a worker; prints where the NDJSON files are."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from exports.models import ExportJob, ExportKind, ExportStatus
from exports.privacy import PseudonymKeyMissing
from exports.selectors import ExportError
from exports.services import export_job_create, export_job_run, export_parameters, job_dir


class Command(BaseCommand):
    help = "Run a FHIR Bulk Data export (NDJSON per resource type) with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username the export runs as (scope, audit)")
        parser.add_argument("--type", default="", help="comma-separated resource types (default: all)")
        parser.add_argument("--since", default="", help="FHIR instant, e.g. 2026-01-01T00:00:00Z")
        parser.add_argument("--group", default="", help="cohort id: export Group/{id}")
        parser.add_argument("--identified", action="store_true", help="identified export (admin, clinician)")
        parser.add_argument("--purpose", default="", help="why (required with --identified; audited)")
        parser.add_argument("--date-shift", action="store_true", help="shift dates per patient")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['user']!r}.")
        since = None
        if options["since"]:
            since = parse_datetime(options["since"])
            if since is None or since.tzinfo is None:
                raise CommandError("--since must be a FHIR instant with a time zone, e.g. 2026-01-01T00:00:00Z.")
        types = [t.strip() for t in options["type"].split(",") if t.strip()]
        kind = ExportKind.GROUP if options["group"] else ExportKind.SYSTEM
        try:
            params = export_parameters(types=types, since=since, output_format=None,
                                       identified=options["identified"], purpose=options["purpose"],
                                       shift_dates=options["date_shift"])
            job = export_job_create(user=user, kind=kind, group_id=options["group"], params=params, enqueue=False,
                                    request_url="manage.py export_fhir " + " ".join(
                                        f"--{k}={v}" for k, v in options.items()
                                        if k in {"type", "since", "group", "identified", "date_shift"} and v))
        except ExportError as exc:
            raise CommandError(exc.message) from exc
        except PseudonymKeyMissing as exc:
            raise CommandError(str(exc)) from exc
        # The raw stream under Django's OutputWrapper: the wrapper ends every write with a newline,
        # which would break tqdm's in-place redraw. disable=None: no bar when not on a terminal.
        bar = tqdm(total=0, unit="res", disable=None, file=self.stderr._out)

        def progress(resource_type: str, count: int, done: int, total: int) -> None:
            bar.total = total
            bar.set_description(resource_type)
            bar.n = done
            bar.refresh()

        export_job_run(job_id=job.pk, progress=progress)
        bar.close()
        job = ExportJob.objects.get(pk=job.pk)
        if job.status != ExportStatus.COMPLETED:
            raise CommandError(f"Export {job.pk} ended {job.status}: {job.failure}")
        directory = job_dir(job)
        for f in [*job.files, *job.errors]:
            self.stdout.write(f"{f['type']}\t{f['count']}\t{directory / f['name']}")
        expires = f"{job.expires_at:%Y-%m-%d %H:%M %Z}" if job.expires_at else "?"
        self.stdout.write(self.style.SUCCESS(f"Export {job.pk} done; the files expire at {expires}."))
