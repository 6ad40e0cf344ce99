"""Seed a realistic data set for the outcome indicators (issue 23) — for benchmarks and demos,
never on a database with real patients (it refuses unless ``--yes-this-is-a-test-database``).

    manage.py seed_outcomes --patients 100000 --regions 5 --departments 20 --programs 3 \\
        --responses-per-patient 10 --readings-per-patient 100 --yes-this-is-a-test-database

On PostgreSQL every bulk table is written with COPY (psycopg); elsewhere (the SQLite demo) with
bulk_create. Deterministic for a given ``--seed``.

What it makes, per patient: one treatment episode in one of the programmes (start spread over
the last two years), a team in a department in a region; ~2 % withdrawn from secondary use;
responses at baseline and around 3, 6 and 12 months (each answered with probability
``--answer-rate``) plus filler responses up to ``--responses-per-patient``, each scored with the
programme's instrument (PHQ-9, GAD-7 or ESAS-r; scores drift down after the start, with noise);
a device lent from the start and readings on most days; alerts with acknowledgement and
resolution times and outcomes; review due times on responses and reviews for most of them.
"""

import json
import random
import time as clock
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import User
from alerts.models import Alert, Outcome, Rule, Severity, Status
from monitoring.models import Device, DeviceKind, DeviceLending, Reading
from patients.models import CareTeam, Patient, Program, Region, Sex, TreatmentEpisode
from questionnaires.library import load, load_scoring
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseReview, ResponseStatus
from questionnaires.services import questionnaire_import

CPH = ZoneInfo("Europe/Copenhagen")
INSTRUMENTS = (("phq-9", "44261-6", 27), ("gad-7", "70274-6", 21), ("esas-r", "esas-r-total", 90))


def _copy(model: type[models.Model], rows: Iterable[dict[str, Any]],
          progress: Callable[[int], None] | None = None) -> int:
    """Insert rows (dicts of attnames) with COPY on PostgreSQL, bulk_create elsewhere; fields a
    row leaves out take their model default. ``progress`` is told the count every million rows."""
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
    now = timezone.now()
    defaults: dict[str, Any] = {}
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            defaults[f.attname] = now
        else:
            defaults[f.attname] = f.get_default()  # "" for a text field without a default
    n = 0
    if connection.vendor == "postgresql":
        # A concrete field always has a column (that is what concrete means); the check is for the type.
        columns = ", ".join(connection.ops.quote_name(column) for f in fields if (column := f.column) is not None)
        json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
        with connection.cursor() as cursor, cursor.connection.cursor().copy(
                f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = []
                for f in fields:
                    v = row.get(f.attname, defaults[f.attname])
                    values.append(json.dumps(v) if f.attname in json_fields and v is not None else v)
                copy.write_row(values)
                n += 1
                if progress and n % 1_000_000 == 0:
                    progress(n)
        return n
    batch: list[models.Model] = []
    for row in rows:
        batch.append(model(**{**defaults, **row}))
        n += 1
        if len(batch) >= 2000:
            model._default_manager.bulk_create(batch)
            batch = []
    model._default_manager.bulk_create(batch)
    return n


class Command(BaseCommand):
    help = "Seed a realistic data set for the outcome indicators (test databases only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=2000)
        parser.add_argument("--regions", type=int, default=5)
        parser.add_argument("--departments", type=int, default=20)
        parser.add_argument("--teams-per-department", type=int, default=2)
        parser.add_argument("--programs", type=int, default=3)
        parser.add_argument("--responses-per-patient", type=int, default=10)
        parser.add_argument("--readings-per-patient", type=int, default=100)
        parser.add_argument("--alerts-per-patient", type=float, default=3.0)
        parser.add_argument("--answer-rate", type=float, default=0.75)
        parser.add_argument("--seed", type=int, default=23)
        parser.add_argument("--yes-this-is-a-test-database", action="store_true", dest="confirmed")

    def handle(self, *args: Any, **o: Any) -> None:
        if not o["confirmed"]:
            raise CommandError("This writes made-up patients. Pass --yes-this-is-a-test-database.")
        rnd = random.Random(o["seed"])
        today = timezone.localdate()
        started = timezone.now()
        self._t0 = clock.perf_counter()
        with transaction.atomic():
            counts = self._seed(rnd, today, o)
        took = (timezone.now() - started).total_seconds()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" — {took:.1f} s")

    def _log(self, message: str) -> None:
        self.stdout.write(f"[{clock.perf_counter() - self._t0:7.1f} s] {message}")
        self.stdout.flush()

    def _copy(self, model: type[models.Model], rows: Iterable[dict[str, Any]]) -> int:
        name = model._meta.verbose_name_plural
        n = _copy(model, rows, progress=lambda k: self._log(f"{name}: {k:,} rows so far"))
        self._log(f"{name}: {n:,} rows written")
        return n

    def _seed(self, rnd: random.Random, today: date, o: dict[str, Any]) -> dict[str, int]:
        regions = list(Region.values)[: o["regions"]]
        teams = []
        for d in range(o["departments"]):
            region = regions[d % len(regions)]
            for t in range(o["teams_per_department"]):
                teams.append(CareTeam.objects.get_or_create(
                    name=f"Seed afd. {d + 1} team {t + 1}",
                    defaults={"department": f"Seed afdeling {d + 1}", "region": region})[0])
        clinician = User.objects.get_or_create(username="seed-clinician", defaults={"role": "clinician"})[0]
        programs, questionnaires, rules = [], [], []
        for k in range(o["programs"]):
            slug, code, top = INSTRUMENTS[k % len(INSTRUMENTS)]
            q = Questionnaire.objects.filter(url=load(slug)["url"]).first()
            if q is None:
                q = questionnaire_import(resource=load(slug))
            if not q.scoring:
                q.scoring = load_scoring(slug)
                q.save(update_fields=["scoring"])
            program = Program.objects.get_or_create(slug=f"seed-{k + 1}", defaults={
                "name": f"Seed-forløb {k + 1} ({slug})", "condition_code": "DC34", "condition_display": "Seed"})[0]
            programs.append((program, code, top))
            questionnaires.append(q)
            rules.append([Rule.objects.get_or_create(program=program, kind=kind, name=f"seed {kind}", defaults={
                "severity": sev, "params": {"measure": "spo2", "low": 92}})[0]
                for kind, sev in (("threshold", Severity.RED), ("answer", Severity.YELLOW),
                                  ("trend", Severity.YELLOW))])

        patients, episodes, responses, devices, lendings, readings, alerts = [], [], [], [], [], [], []
        base_cpr = o["seed"]
        for i in range(o["patients"]):
            pid = uuid.uuid4()
            k = rnd.randrange(len(programs))
            program, code, top = programs[k]
            team = teams[rnd.randrange(len(teams))]
            start = today - timedelta(days=rnd.randrange(0, 730))
            birth = date(rnd.randrange(1930, 2000), rnd.randrange(1, 13), rnd.randrange(1, 29))
            withdrawn = timezone.now() if rnd.random() < 0.02 else None
            # Unique and CPR-shaped, not a real CPR number (no valid birth date in it).
            patients.append({"id": pid, "cpr": f"9{base_cpr % 10:1d}{i // 10000:04d}-{i % 10000:04d}",
                             "given_name": "Seed", "family_name": f"Patient {i}", "birth_date": birth,
                             "sex": Sex.FEMALE if rnd.random() < 0.5 else Sex.MALE,
                             "secondary_use_withdrawn_at": withdrawn})
            episodes.append({"patient_id": pid, "program_id": program.pk, "care_team_id": team.pk,
                             "condition_code": "DC34", "treatment_start": start})
            severity0 = rnd.uniform(0.2, 0.8) * top
            days = [rnd.randrange(-20, 1)]
            days += [d + rnd.randrange(-20, 21) for d in (91, 182, 365) if rnd.random() < o["answer_rate"]]
            while len(days) < o["responses_per_patient"]:
                days.append(rnd.randrange(1, 730))
            for day in days:
                on = start + timedelta(days=day)
                if on >= today:
                    continue
                at = datetime.combine(on, time(rnd.randrange(7, 22), rnd.randrange(60)), tzinfo=CPH)
                trend = severity0 * (1 - min(day, 365) / 365 * rnd.uniform(0.0, 0.6)) + rnd.gauss(0, top / 15)
                score = max(0, min(top, round(trend)))
                due = at + timedelta(days=2)
                responses.append({"patient_id": pid, "questionnaire_id": questionnaires[k].pk, "items": [],
                                  "status": ResponseStatus.COMPLETED, "authored_at": at, "received_at": at,
                                  "scores": [{"code": {"code": code}, "value": score}],
                                  "review_due_at": due, "evaluated_at": at})
            serial = f"SEED-{o['seed']}-{i}"
            devices.append({"kind": DeviceKind.PULSE_OXIMETER, "serial": serial, "patient_id": pid,
                            "lent_from": start})
            lendings.append((serial, pid, start))
            span = max(1, min(730, (today - start).days))
            readings.append((pid, start, span))
            n_alerts = int(o["alerts_per_patient"]) + (1 if rnd.random() < o["alerts_per_patient"] % 1 else 0)
            for a in range(n_alerts):
                raised = datetime.combine(start + timedelta(days=rnd.randrange(span)), time(10), tzinfo=CPH)
                if raised >= timezone.now():
                    continue
                rule = rules[k][rnd.randrange(3)]
                ack = raised + timedelta(minutes=rnd.lognormvariate(3.3, 1.0))
                resolved = ack + timedelta(minutes=rnd.lognormvariate(4.0, 1.0))
                alerts.append({"patient_id": pid, "rule_id": rule.pk, "rule_version": 1, "severity": rule.severity,
                               "status": Status.RESOLVED, "reason": "seed", "evidence": {},
                               "source_key": f"seed:{i}:{a}",
                               "raised_at": raised, "updated_at": resolved, "acknowledged_at": ack,
                               "acknowledged_by_id": clinician.pk, "resolved_at": resolved,
                               "resolved_by_id": clinician.pk,
                               "outcome": rnd.choice([Outcome.NO_ACTION, Outcome.NO_ACTION, Outcome.CALLED_PATIENT,
                                                      Outcome.BOOKED_VISIT])})
        self._log(f"generated {len(patients)} patients, {len(responses)} responses, {len(alerts)} alerts")
        counts = {"patients": self._copy(Patient, patients), "episodes": self._copy(TreatmentEpisode, episodes),
                  "responses": self._copy(QuestionnaireResponse, responses), "devices": self._copy(Device, devices)}
        device_ids = dict(Device.objects.filter(serial__startswith=f"SEED-{o['seed']}-").values_list("serial", "pk"))
        counts["lendings"] = self._copy(DeviceLending, ({"device_id": device_ids[s], "patient_id": p, "lent_from": d}
                                                   for s, p, d in lendings))
        # Readings are streamed into COPY, never held: 10 million dicts would not fit in memory.
        received = timezone.now()
        counts["readings"] = self._copy(Reading, (
            {"patient_id": pid, "measure": "spo2", "value": rnd.randrange(88, 100), "unit": "%",
             "effective_at": datetime.combine(start + timedelta(days=rnd.randrange(span)), time(8, rnd.randrange(60)),
                                              tzinfo=CPH),
             "received_at": received, "source": "device"}
            for pid, start, span in readings for _r in range(o["readings_per_patient"] if span > 1 else 0)))
        counts["alerts"] = self._copy(Alert, alerts)
        # Most responses are reviewed, most of those in time.
        reviewed = QuestionnaireResponse.objects.filter(patient_id__in=[p["id"] for p in patients[:50000]]) \
            .values_list("pk", "review_due_at")
        counts["reviews"] = self._copy(ResponseReview, (
            {"response_id": pk, "reviewed_by_id": clinician.pk,
             "reviewed_at": due - timedelta(hours=rnd.uniform(-20, 40))}
            # Every seeded response has a due date; a response without one has nothing to be late for.
            for pk, due in reviewed if due is not None and rnd.random() < 0.9))
        return counts
