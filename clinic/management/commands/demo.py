"""python manage.py demo — demo data you can log in to. Safe to run again: nothing is duplicated.

Creates two care teams, a lung-cancer follow-up and a heart-failure home-monitoring programme,
~40 patients with treatment starts over the last year, months of readings and answers, the
rules, and a few recent readings that raise open alerts through the real ingest path.
"""

import io
import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from alerts.models import EscalationPolicy, Rule, Severity
from monitoring.models import Device, DeviceKind, DeviceLending, DeviceToken, Reading, Source
from monitoring.services import reading_ingest
from patients.models import CareTeam, Patient, Program, Region, Sex, TreatmentEpisode
from questionnaires.library import load
from questionnaires.models import Questionnaire, QuestionnaireResponse, ResponseReview
from questionnaires.review import review_fields
from questionnaires.scoring import score_response
from questionnaires.services import questionnaire_import, response_submit

PHQ9_URL = "https://proplatform.example/fhir/Questionnaire/phq-9"
DEFAULT_PASSWORD = "proplatform-demo"  # noqa: S105 - documented demo password, demo data only
GIVEN_F = ["Karen", "Inger", "Kirsten", "Hanne", "Birthe", "Lene", "Susanne", "Anne", "Bente", "Grethe"]
GIVEN_M = ["Jens", "Niels", "Poul", "Henrik", "Lars", "Søren", "Ole", "Erik", "Hans", "Bent"]
FAMILY = ["Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
          "Rasmussen", "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen"]


class Command(BaseCommand):
    help = "Create demo data (idempotent) and print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD,
                            help=f"Password of every demo login (default: {DEFAULT_PASSWORD}).")
        parser.add_argument("--patients", type=int, default=40)
        parser.add_argument("--refuse-default-password", action="store_true",
                            help=f"Stop if the password is the published {DEFAULT_PASSWORD!r} (bin/production-local "
                                 "passes this unless started with --demo).")

    def handle(self, *args: Any, password: str, patients: int, **options: Any) -> None:
        if options["refuse_default_password"] and password == DEFAULT_PASSWORD:
            # Everyone who read the README knows it: on a reachable server it opens the admin.
            raise CommandError(f"Refusing the published demo password {DEFAULT_PASSWORD!r} here. Choose "
                               "another (DEMO_PASSWORD=…), or ask for the demo explicitly (--demo).")
        with transaction.atomic():
            team_a, team_b, lung, hf = self._setup()
            cast = self._cast(password, team_a, team_b, lung, hf)
            self._escalation(password, team_a, team_b)
            for i in range(patients):
                # One seed per patient: the same demo every time, whatever ran before.
                team, program = (team_a, lung) if i % 2 == 0 else (team_b, hf)
                self._patient(random.Random(f"demo-{i}"), i, password, team, program)
        # Outside the bulk transaction: these go through the real ingest path, so their rules
        # run (in-process in the embedded shape, on the worker in the production shape).
        self._recent_alerting_readings(cast)
        self._schedules(lung, hf)
        self._cohorts(lung, hf)
        tokens = self._device_tokens(cast)
        self._print(password, tokens)

    # --- organisation -------------------------------------------------------------------------
    def _setup(self) -> tuple[CareTeam, CareTeam, Program, Program]:
        team_a, _ = CareTeam.objects.get_or_create(
            name="Lungemedicin, Aarhus Universitetshospital",
            defaults={"department": "Lungemedicinsk afdeling", "region": Region.MIDTJYLLAND})
        team_b, _ = CareTeam.objects.get_or_create(
            name="Kardiologi, Rigshospitalet",
            defaults={"department": "Hjertemedicinsk klinik", "region": Region.HOVEDSTADEN})
        lung, _ = Program.objects.get_or_create(
            slug="lung-cancer-follow-up",
            defaults={"name": "Opfølgning efter lungekræft", "condition_code": "DC34",
                      "condition_display": "Malign neoplasma i bronkie og lunge"})
        hf, _ = Program.objects.get_or_create(
            slug="heart-failure-home-monitoring",
            defaults={"name": "Hjemmemonitorering ved hjertesvigt", "condition_code": "DI50",
                      "condition_display": "Hjerteinsufficiens"})
        lung.questionnaires.add(questionnaire_import(resource=load("lung-followup")))
        # The shipped instruments with their scoring (idempotent); PHQ-9 joins lung follow-up.
        call_command("load_instruments", stdout=io.StringIO())
        lung.questionnaires.add(Questionnaire.objects.filter(url=PHQ9_URL).latest("created_at"))
        hf.questionnaires.add(questionnaire_import(resource=load("hf-daily")))
        # Each .add above gave the instrument its safety net in the programme (alerts.safety,
        # issue 19). The receipt tells patients who ask for a call or answer red to ring these.
        Program.objects.filter(pk=lung.pk, department_phone="").update(department_phone="12 34 56 78")
        Program.objects.filter(pk=hf.pk, department_phone="").update(department_phone="87 65 43 21")
        rules = [
            (lung, "threshold", "SpO2 under 90 %", Severity.RED, {"measure": "spo2", "low": 90}),
            (lung, "threshold", "Temperatur 38,5 °C eller derover", Severity.YELLOW,
             {"measure": "body-temperature", "high": "38.4"}),
            # Lung follow-up answers are judged by the colours in the questionnaire itself
            # ("answer-severity" below: coughing up blood is red, "contact me" at least yellow).
            (hf, "threshold", "SpO2 under 92 %", Severity.RED, {"measure": "spo2", "low": 92}),
            (hf, "threshold", "Puls uden for 45–110", Severity.YELLOW,
             {"measure": "heart-rate", "low": 45, "high": 110}),
            (hf, "answer", "Meget mere forpustet", Severity.RED,
             {"questionnaire": "https://proplatform.example/fhir/Questionnaire/hf-daily",
              "link_id": "breathless", "codes": ["much-worse"]}),
            (hf, "answer", "Patienten ønsker at blive kontaktet", Severity.YELLOW,
             {"questionnaire": "https://proplatform.example/fhir/Questionnaire/hf-daily",
              "link_id": "contact", "codes": ["true"]}),
            # Issue #5 kinds: per-answer colours, score limits, four bands, change over a window.
            (lung, "answer-severity", "Bekymrende svar (farverne i spørgeskemaet)", Severity.YELLOW,
             {"questionnaire": "https://proplatform.example/fhir/Questionnaire/lung-followup"}),
            (lung, "score", "PHQ-9 samlet score 10 eller derover", Severity.YELLOW,
             {"questionnaire": PHQ9_URL, "score": "44261-6", "limit": 10}),
            (hf, "bands", "Blodtryksintervaller", Severity.YELLOW,
             {"measure": "blood-pressure",
              "bands": {"alert_low": 85, "warning_low": 95, "warning_high": 160, "alert_high": 180},
              "bands2": {"warning_high": 100, "alert_high": 110}}),
            (hf, "change", "Vægt op mere end 2 kg på 3 dage", Severity.RED,
             {"measure": "body-weight", "direction": "up", "more_than": 2, "window": "P3D", "reference": "lowest"}),
            (hf, "change", "Vægt op mere end 1 kg på 24 timer", Severity.YELLOW,
             {"measure": "body-weight", "direction": "up", "more_than": 1, "window": "PT24H",
              "reference": "lowest"}),
            (hf, "change", "SpO2 ned 3 procentpoint fra 14-dages-medianen", Severity.YELLOW,
             {"measure": "spo2", "direction": "down", "at_least": 3, "window": "P14D", "reference": "median",
              "min_readings": 3}),
            (hf, "news2", "NEWS2 ud fra hjemmemålinger (delmængde)", Severity.YELLOW, {}),
            (hf, "missed", "To daglige tjek i træk ikke besvaret", Severity.YELLOW,
             {"questionnaire": "https://proplatform.example/fhir/Questionnaire/hf-daily", "grace_hours": 2,
              "consecutive": 2}),
            (lung, "missed", "Opfølgningsskema ikke besvaret", Severity.YELLOW, {"grace_hours": 24}),
        ]
        for program, kind, name, severity, params in rules:
            Rule.objects.get_or_create(program=program, name=name,
                                       defaults={"kind": kind, "severity": severity, "params": params})
        return team_a, team_b, lung, hf

    def _user(self, username: str, role: Role, password: str, **extra: Any) -> User:
        user, created = User.objects.get_or_create(username=username, defaults={"role": role, **extra})
        if created or not user.check_password(password):
            user.set_password(password)
            user.save()
        return user

    def _cast(self, password: str, team_a: CareTeam, team_b: CareTeam,
              lung: Program, hf: Program) -> dict[str, Patient]:
        team_a.members.add(self._user("clinician-a", Role.CLINICIAN, password,
                                      first_name="Mette", last_name="Sygeplejerske"))
        team_b.members.add(self._user("clinician-b", Role.CLINICIAN, password,
                                      first_name="Jonas", last_name="Sygeplejerske"))
        self._user("quality", Role.QUALITY, password, first_name="Kvalitets", last_name="Medarbejder")
        self._user("admin", Role.ADMIN, password, is_staff=True, is_superuser=True)
        today = timezone.localdate()
        a = self._ensure_patient("patient-a", password, "010150-1234", "Karen", "Demo", date(1950, 1, 1),
                                 Sex.FEMALE, team_a, lung, today - timedelta(days=120))
        b = self._ensure_patient("patient-b", password, "020248-4321", "Poul", "Demo", date(1948, 2, 2),
                                 Sex.MALE, team_b, hf, today - timedelta(days=200))
        return {"a": a, "b": b}

    def _escalation(self, password: str, team_a: CareTeam, team_b: CareTeam) -> None:
        """Red alerts nobody acknowledges climb (alerts.escalation): the team's nurse on call after
        30 minutes, the team lead (lead-a, lead-b) after an hour; notices go by e-mail too."""
        for suffix, team in (("a", team_a), ("b", team_b)):
            lead = self._user(f"lead-{suffix}", Role.CLINICIAN, password, first_name="Overlæge",
                              last_name=f"Team {suffix.upper()}", email=f"lead-{suffix}@example.org")
            team.members.add(lead)
            on_call = User.objects.get(username=f"clinician-{suffix}")
            User.objects.filter(pk=on_call.pk, email="").update(email=f"clinician-{suffix}@example.org")
            EscalationPolicy.objects.get_or_create(
                care_team=team, defaults={"after": timedelta(minutes=30), "on_call": on_call, "lead": lead})

    def _ensure_patient(self, username: str, password: str, cpr: str, given: str, family: str,
                        born: date, sex: Sex, team: CareTeam, program: Program, start: date) -> Patient:
        user = self._user(username, Role.PATIENT, password, first_name=given, last_name=family)
        patient, _ = Patient.objects.get_or_create(
            user=user, defaults={"cpr": cpr, "given_name": given, "family_name": family,
                               "birth_date": born, "sex": sex, "phone": "+45 20 00 00 00"})
        if not patient.episodes.exists():
            TreatmentEpisode.objects.create(patient=patient, program=program, care_team=team,
                                            condition_code=program.condition_code, treatment_start=start)
        return patient

    # --- the crowd ----------------------------------------------------------------------------
    def _patient(self, rng: random.Random, i: int, password: str, team: CareTeam, program: Program) -> None:
        female = rng.random() < 0.5
        given = rng.choice(GIVEN_F if female else GIVEN_M)
        family = rng.choice(FAMILY)
        born = date(rng.randint(1936, 1975), rng.randint(1, 12), rng.randint(1, 28))
        cpr = f"{born:%d%m%y}-{9000 + i:04d}"
        start = timezone.localdate() - timedelta(days=rng.randint(10, 365))
        patient = self._ensure_patient(f"demo-patient-{i:02d}", password, cpr, given, family, born,
                                       Sex.FEMALE if female else Sex.MALE, team, program, start)
        if patient.readings.exists():
            return
        self._history(rng, patient, program, start)

    def _history(self, rng: random.Random, patient: Patient, program: Program, start: date) -> None:
        now = timezone.now()
        days = min((timezone.localdate() - start).days, 90)
        weight = Decimal(rng.randint(60, 95))
        rows = []
        hf = program.slug.startswith("heart")
        for d in range(days, 0, -1):
            day = timezone.localdate() - timedelta(days=d)
            at = timezone.make_aware(datetime.combine(day, time(8, rng.randint(0, 59))))
            if hf:
                weight += Decimal(rng.choice([-2, -1, 0, 0, 1, 2])) / 10
                rows += [
                    Reading(patient=patient, measure="body-weight", value=weight, unit="kg", effective_at=at),
                    Reading(patient=patient, measure="spo2", value=rng.randint(93, 99), unit="%", effective_at=at),
                    Reading(patient=patient, measure="heart-rate", value=rng.randint(58, 92), unit="/min",
                            effective_at=at),
                ]
            elif d % 7 == 0:
                rows.append(Reading(patient=patient, measure="spo2", value=rng.randint(91, 99), unit="%",
                                    effective_at=at))
        for r in rows:
            r.source, r.received_at = Source.DEVICE, r.effective_at
        Reading.objects.bulk_create(rows)
        questionnaire = program.questionnaires.exclude(url=PHQ9_URL).order_by("-created_at").first()
        if program.questionnaires.filter(url=PHQ9_URL).exists():
            self._phq9_history(rng, patient, start)
        if questionnaire is None:
            return
        responses = []
        for week in range(days // 7, 0, -1):
            authored = now - timedelta(days=7 * week, hours=rng.randint(0, 8))
            responses.append(QuestionnaireResponse(
                patient=patient, questionnaire=questionnaire, items=_calm_answers(questionnaire),
                authored_at=authored, received_at=authored, author=patient.user, evaluated_at=now))
        _history_store(patient, responses)

    def _phq9_history(self, rng: random.Random, patient: Patient, start: date) -> None:
        """Monthly PHQ-9 since the treatment start, scored as a real submission would be, so that
        'My answers' and the patient page show scores over time."""
        phq9 = Questionnaire.objects.filter(url=PHQ9_URL).order_by("-created_at").first()
        if phq9 is None or QuestionnaireResponse.objects.filter(patient=patient, questionnaire=phq9).exists():
            return
        definition = phq9.definition
        group = definition.item[0]
        mood = rng.choice([0, 0, 1, 1, 2])  # how this patient tends to feel
        responses = []
        for month in range(min((timezone.localdate() - start).days // 30, 12), -1, -1):
            authored = timezone.now() - timedelta(days=30 * month + 1, hours=rng.randint(0, 8))
            answers: list[dict[str, Any]] = []
            for item in group.item:
                level = max(0, min(3, mood + rng.choice([-1, 0, 0, 1]) - (1 if month == 0 else 0)))
                coding = item.answerOption[level].valueCoding
                assert coding is not None  # PHQ-9's options are codings
                answers.append({"linkId": item.linkId, "text": item.text,
                                "answer": [{"valueCoding": coding.as_fhir()}]})
            items: list[dict[str, Any]] = [{"linkId": group.linkId, "text": group.text, "item": answers},
                     {"linkId": "contact", "text": "Vil du gerne kontaktes af os?",
                      "answer": [{"valueBoolean": False}]}]
            responses.append(QuestionnaireResponse(
                patient=patient, questionnaire=phq9, items=items, author=patient.user, authored_at=authored,
                received_at=authored,
                evaluated_at=timezone.now(), scores=score_response(questionnaire=phq9, items=items)))
        _history_store(patient, responses)

    # --- open alerts through the real path ----------------------------------------------------
    def _recent_alerting_readings(self, cast: dict[str, Patient]) -> None:
        now = timezone.now()
        crowd = list(Patient.objects.filter(user__username__startswith="demo-patient-")
                     .order_by("user__username")[:6])
        plan = [(cast["b"], "spo2", Decimal("89"), "%", 3)]
        plan += [(p, "spo2", Decimal("88"), "%", 5 + n) for n, p in enumerate(crowd[:3])]
        plan += [(p, "heart-rate", Decimal("118"), "/min", 30 + n) for n, p in enumerate(crowd[3:])]
        for n, (patient, measure, value, unit, minutes_ago) in enumerate(plan):
            if Reading.objects.filter(patient=patient, client_id=f"demo-alert-{n}").exists():
                continue  # sent on an earlier run
            reading_ingest(patient=patient, measure=measure, value=value, unit=unit,
                           effective_at=now - timedelta(minutes=minutes_ago), source=Source.DEVICE,
                           client_id=f"demo-alert-{n}")
        self._phq9_history(random.Random("demo-patient-a"), cast["a"],
                           cast["a"].episodes.get().treatment_start)
        lung_q = Questionnaire.objects.get(url__endswith="/lung-followup")
        if not QuestionnaireResponse.objects.filter(patient=cast["a"], questionnaire=lung_q).exists():
            items = _calm_answers(lung_q)
            items[-1]["answer"] = [{"valueBoolean": True}]  # "Vil du gerne kontaktes?" — ja
            response_submit(patient=cast["a"], questionnaire=lung_q, items=items, author=cast["a"].user)

    # --- questionnaire schedules -------------------------------------------------------------
    def _schedules(self, lung: Program, hf: Program) -> None:
        """The standard follow-up for lung cancer and Monday + Thursday checks for heart failure,
        with each episode's occurrences generated and opened. Idempotent: schedules are found by
        name and occurrences are unique per due time."""
        # Imported here, not at the top: keeps the schedules part of the demo in one place.
        from schedules.services import (
            episodes_generate_occurrences,
            occurrences_advance,
            schedule_create,
            schedules_standard_follow_up,
        )

        base = "https://proplatform.example/fhir/Questionnaire/"
        schedules_standard_follow_up(program=lung, questionnaire_url=base + "lung-followup")
        if not hf.schedules.filter(name="Tjek mandag og torsdag").exists():
            schedule_create(program=hf, name="Tjek mandag og torsdag", questionnaire_url=base + "hf-daily",
                            kind="weekdays", params={"weekdays": ["mon", "thu"], "from_day": 0, "to_day": 365},
                            open_before=timedelta(hours=3), window=timedelta(hours=33),
                            remind_before=timedelta(hours=6))
        now = timezone.now()
        episodes_generate_occurrences(now=now)
        occurrences_advance(now=now)

    def _cohorts(self, lung: Program, hf: Program) -> None:
        """Two saved cohorts for the quality pages (found by name, so a re-run adds nothing)."""
        from outcomes.models import Cohort

        Cohort.objects.get_or_create(name="Lungekræft, alle", defaults={
            "program": lung, "condition_code": "DC34",
            "description": "Alle i lungekræftopfølgning siden programmets start."})
        Cohort.objects.get_or_create(name="Hjertesvigt, 70 år og ældre", defaults={
            "program": hf, "age_min": 70, "region": Region.HOVEDSTADEN})

    def _device_tokens(self, cast: dict[str, Patient]) -> dict[str, str]:
        tokens = {}
        for key, kind in (("a", DeviceKind.PULSE_OXIMETER), ("b", DeviceKind.PULSE_OXIMETER)):
            device, _ = Device.objects.get_or_create(
                kind=kind, serial=f"DEMO-OX-{key.upper()}", defaults={"patient": cast[key], "model": "Nonin 3230",
                                                                "lent_from": timezone.localdate() - timedelta(days=60)})
            DeviceLending.objects.get_or_create(device=device, lent_from=device.lent_from,
                                                defaults={"patient": device.patient, "lent_to": device.lent_to})
            # Tokens are stored hashed and cannot be shown again: rotate on every run.
            DeviceToken.objects.filter(device=device, revoked_at=None).update(revoked_at=timezone.now())
            _token, raw = DeviceToken.issue(device)
            tokens[f"patient-{key}"] = raw
        return tokens

    def _print(self, password: str, tokens: dict[str, str]) -> None:
        w = self.stdout.write
        w(self.style.SUCCESS("Demo data ready."))
        w(f"Logins (password: {password}):")
        if settings.REQUIRE_STAFF_TWO_FACTOR:
            w("Staff logins (clinicians, quality, admin) need two-factor login: at the first login they set up an "
              "authenticator app.")
        else:
            w("Two-factor login for staff is off here; turn it on with REQUIRE_STAFF_TWO_FACTOR=1 "
              "(on by default in the production shape).")
        w("  patient-a    patient, lung-cancer follow-up, team A (Lungemedicin, Aarhus)")
        w("  patient-b    patient, heart-failure monitoring, team B (Kardiologi, Rigshospitalet)")
        w("  clinician-a  nurse on team A          clinician-b  nurse on team B")
        w("  quality      quality staff            admin        administrator (also /admin/)")
        w("  lead-a       team lead, team A        lead-b       team lead, team B (escalations)")
        w("Device tokens (new on every run; the old ones are revoked):")
        for who, raw in tokens.items():
            w(f"  {who}'s pulse oximeter: {raw}")
        w("Send a reading as patient-a's device:")
        w(f"  curl -X POST http://127.0.0.1:8000/api/v1/readings -H 'Authorization: Bearer {tokens['patient-a']}' "
          "-H 'Content-Type: application/json' "
          "-d '{\"measure\": \"spo2\", \"value\": 87, \"unit\": \"%\", \"effective_at\": \"" +
          timezone.now().replace(microsecond=0).isoformat() + "\"}'")


def _calm_answers(questionnaire: Questionnaire) -> list[dict[str, Any]]:
    """A response where nothing is wrong: first option, 'no' to yes/no, nothing typed."""
    def item(q: Any) -> dict[str, Any] | None:
        out: dict[str, Any] = {"linkId": q.linkId, "text": q.text}
        if q.type == "group":
            out["item"] = [c for c in (item(child) for child in q.item) if c]
        elif q.type == "boolean":
            out["answer"] = [{"valueBoolean": False}]
        elif q.type == "choice":
            # The option as an answer, as the web form stores it. A model_dump here wrote the
            # parser's own field names (display_element) and empty arrays into the answers (issue 21).
            out["answer"] = [q.answerOption[0].fhir_value()]
        else:
            return None
        return out

    return [i for i in (item(q) for q in questionnaire.definition.item) if i]


def _history_store(patient: Patient, responses: list[QuestionnaireResponse]) -> None:
    """Store made-up earlier answers as the review queue would have left them: each with its
    colour and due time (questionnaires.review), those older than a week looked at by a nurse of
    the patient's team, the newer ones still on the "Svar til gennemsyn" list. Every response has
    a due time, so none can fall off the queue."""
    for response in responses:
        for name, value in review_fields(patient_id=patient.pk, questionnaire=response.questionnaire,
                                         items=response.items, received_at=response.received_at).items():
            setattr(response, name, value)
    QuestionnaireResponse.objects.bulk_create(responses)
    episode = patient.episodes.select_related("care_team").first()
    nurse = episode.care_team.members.filter(role="clinician").order_by("pk").first() if episode else None
    week_ago = timezone.now() - timedelta(days=7)
    if nurse is not None:
        ResponseReview.objects.bulk_create([
            ResponseReview(response=r, reviewed_by=nurse, reviewed_at=r.received_at + timedelta(hours=20))
            for r in responses if r.received_at < week_ago])
