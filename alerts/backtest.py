"""Back-testing: how many alerts a candidate rule set would have raised over the last N days of
real data, per rule and per patient, beside what the current rules raise on the same data.

A pure replay — nothing is written. Every reading, completed response and missed occurrence of
the period is fed, in the order it arrived, to the same rule kinds the live evaluation uses,
with a Context whose ``as_of`` is the event's own time, so that a rule never sees data that had
not arrived yet. Findings collapse into alerts the way alerts.services.findings_apply does: one
alert per patient and rule while it is unresolved (later findings are evidence on it, a red one
turns it red), the rule's cooldown after resolution, and clinicians' snoozes as they were at
the time.

Assumptions (also stated on the page):
- nobody resolves alerts in the replay, except that every alert counts as resolved
  ``resolve_after`` after it was raised (None = never resolved within the period);
- per-patient overrides are today's, for the current and the candidate rules alike;
- readings marked erroneous today are left out of the whole period;
- a reading or a response is evaluated when it was received (judged at its own time), a missed
  occurrence when its deadline plus the rule's grace had passed.

Speed: one query each for the period's readings (with a look-back for history), responses,
missed occurrences, episodes, overrides and snoozes. Reading history is answered from memory;
other history (earlier responses, pauses) is read as-of from the database.
"""

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.models import Rule, RuleOverride, Severity, Snooze
from alerts.rules import KINDS, Finding, merged_params, parse_params
from alerts.rules.context import Context, PastReading, patient_of
from monitoring.models import Reading
from monitoring.rows import READING_ROW_COLUMNS, ReadingRow
from patients.models import Program, TreatmentEpisode
from questionnaires.models import QuestionnaireResponse, ResponseStatus
from schedules.models import MissedOccurrence

# What a replayed event judges: a reading, a response or a missed occurrence.
Subject = ReadingRow | QuestionnaireResponse | MissedOccurrence

MAX_DAYS = 90
# Reading history older than this before the period is read from the database when a rule asks
# (a 14-day median needs 14 days before the first event); most windows are shorter.
LOOKBACK = timedelta(days=30)
_RANK: dict[str, int] = {Severity.YELLOW: 1, Severity.RED: 2}


# --- the candidate rule set ---------------------------------------------------------------------

@dataclass
class RuleSpec:
    """One rule definition in the replay. An unchanged rule is one spec counted for both sets."""

    key: str
    rule_id: int | None
    name: str
    program_id: int
    kind: str
    severity: str
    params: dict[str, Any]
    cooldown: timedelta
    in_current: bool
    in_candidate: bool
    change: str  # "unchanged", "current" / "candidate" (two halves of a change), "new", "removed"


def candidate_parse(text: str) -> list[dict[str, Any]]:
    """The candidate as typed: a JSON list (or one object). Raises ValidationError with one
    message per problem, each naming the entry."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(_("Not valid JSON: %(error)s (line %(line)s, column %(column)s).")
                              % {"error": exc.msg, "line": exc.lineno, "column": exc.colno}) from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValidationError(_("Give a list of rule objects, e.g. [{\"rule\": 3, \"params\": {\"low\": 90}}]."))
    return data


def specs_build(candidate: list[dict[str, Any]]) -> list[RuleSpec]:
    """The current active rules and the candidate set as specs. Raises ValidationError naming
    each invalid entry (unknown rule or programme, unknown kind, invalid parameters)."""
    current = {r.pk: r for r in Rule.objects.filter(active=True).order_by("id")}
    changes: dict[int, dict[str, Any]] = {}
    new: list[RuleSpec] = []
    errors: list[str] = []
    programs = dict(Program.objects.values_list("slug", "id"))
    for n, entry in enumerate(candidate, start=1):
        where = _("Entry %(n)s") % {"n": n}
        unknown = set(entry) - {"rule", "program", "kind", "name", "severity", "params", "active", "cooldown_hours"}
        if unknown:
            errors.append(_("%(where)s: unknown keys %(keys)s.") % {"where": where, "keys": ", ".join(sorted(unknown))})
            continue
        try:
            if "rule" in entry:
                rule = current.get(entry["rule"]) if isinstance(entry["rule"], int) else None
                if rule is None:
                    raise ValidationError(_("no active rule has id %(id)s.") % {"id": entry["rule"]})
                if entry["rule"] in changes:
                    raise ValidationError(_("rule %(id)s is changed twice.") % {"id": entry["rule"]})
                params = merged_params(rule.params, _dict(entry.get("params", {})))
                kind = rule.kind
                changes[rule.pk] = {"params": params, "severity": _severity(entry.get("severity", rule.severity)),
                                    "active": entry.get("active", True) is not False,
                                    "cooldown": _cooldown(entry, rule.cooldown)}
            else:
                named = entry.get("kind")
                if not isinstance(named, str) or named not in KINDS:
                    raise ValidationError(_("unknown kind %(kind)r; known: %(known)s.")
                                          % {"kind": named, "known": ", ".join(sorted(KINDS))})
                kind = named
                if entry.get("program") not in programs:
                    raise ValidationError(_("give \"program\" as the slug of a programme (%(known)s).")
                                          % {"known": ", ".join(sorted(programs))})
                params = _dict(entry.get("params", {}))
                new.append(RuleSpec(f"new:{n}", None, str(entry.get("name") or _("New rule %(n)s") % {"n": n}),
                                    programs[entry["program"]], kind, _severity(entry.get("severity", "yellow")),
                                    params, _cooldown(entry, timedelta(0)), False, True, "new"))
            parse_params(kind, params)
        except ValidationError as exc:
            errors.extend(f"{where}: {m}" for m in exc.messages)
    if errors:
        raise ValidationError(errors)

    specs: list[RuleSpec] = []
    for rule in current.values():
        base = RuleSpec(f"rule:{rule.pk}", rule.pk, rule.name, rule.program_id, rule.kind, rule.severity,
                        rule.params, rule.cooldown, True, True, "unchanged")
        change = changes.get(rule.pk)
        if change is None:
            specs.append(base)
        elif not change["active"]:
            base.in_candidate, base.change = False, "removed"
            specs.append(base)
        elif (change["params"], change["severity"], change["cooldown"]) == (rule.params, rule.severity, rule.cooldown):
            specs.append(base)
        else:
            base.in_candidate, base.change = False, "current"
            specs.append(base)
            specs.append(RuleSpec(f"rule:{rule.pk}:candidate", rule.pk, rule.name, rule.program_id, rule.kind,
                                  change["severity"], change["params"], change["cooldown"], False, True, "candidate"))
    return specs + new


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(_("\"params\" must be an object."))
    return value


def _severity(value: Any) -> str:
    if value not in _RANK:
        raise ValidationError(_("\"severity\" must be \"yellow\" or \"red\"."))
    return str(value)


def _cooldown(entry: dict[str, Any], default: timedelta) -> timedelta:
    if "cooldown_hours" not in entry:
        return default
    hours = entry["cooldown_hours"]
    if not isinstance(hours, int | float) or isinstance(hours, bool) or hours < 0:
        raise ValidationError(_("\"cooldown_hours\" must be a number of hours, 0 or more."))
    return timedelta(hours=hours)


# --- the replay ---------------------------------------------------------------------------------

@dataclass
class Counts:
    alerts: int = 0
    red: int = 0
    yellow: int = 0
    findings: int = 0
    errors: int = 0


@dataclass
class Result:
    start: datetime
    end: datetime
    resolve_after: timedelta | None
    specs: list[RuleSpec]
    by_spec: dict[str, Counts]
    # patient id -> (current alerts, candidate alerts)
    by_patient: dict[Any, list[int]]
    events: dict[str, int]
    totals: dict[str, Counts] = field(default_factory=dict)
    # spec key -> patient id -> alerts the spec raised for that patient (the editor's "here they are")
    by_spec_patient: dict[str, dict[Any, int]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """Per rule: the current and the candidate count side by side (a changed rule is one row)."""
        rows: dict[str, dict[str, Any]] = {}
        for spec in self.specs:
            row_key = f"rule:{spec.rule_id}" if spec.rule_id else spec.key
            row = rows.setdefault(row_key, {"spec": spec, "current": None, "candidate": None,
                                            "change": spec.change})
            counts = self.by_spec[spec.key]
            if spec.in_current:
                row["current"] = counts
            if spec.in_candidate:
                row["candidate"] = counts
            if spec.change in ("current", "candidate"):
                row["change"] = "changed"
        return list(rows.values())


class _ReplayContext(Context):
    """Context whose reading history comes from memory (loaded once for the whole period)."""

    def __init__(self, *, readings: dict[tuple[Any, str], list[tuple[datetime, int, datetime, PastReading]]],
                 loaded_from: datetime) -> None:
        super().__init__(now=loaded_from, as_of=loaded_from)
        self._readings = readings
        self._loaded_from = loaded_from

    def at(self, moment: datetime) -> "_ReplayContext":
        self.now = self.as_of = moment
        return self

    def readings(self, patient_id: UUID, measure: str, *, since: datetime, until: datetime) -> list[PastReading]:
        if since < self._loaded_from:
            return super().readings(patient_id, measure, since=since, until=until)
        rows = self._readings.get((patient_id, measure), [])
        lo = bisect.bisect_left(rows, since, key=lambda r: r[0])
        hi = bisect.bisect_right(rows, until, key=lambda r: r[0])
        assert self.as_of is not None
        return [r[3] for r in rows[lo:hi] if r[2] <= self.as_of]

    def latest_readings(
        self, patient_id: UUID, measures: list[str], *, since: datetime, until: datetime
    ) -> dict[str, PastReading]:
        found = {}
        for measure in measures:
            rows = self.readings(patient_id, measure, since=since, until=until)
            if rows:
                found[measure] = rows[-1]
        return found


def backtest_run(*, candidate: list[dict[str, Any]], days: int, resolve_after: timedelta | None,
                 now: datetime | None = None) -> Result:
    """Replay the last ``days`` days with the current rules and the candidate set. Writes nothing."""
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": _("Give a number of days from 1 to %(max)s.") % {"max": MAX_DAYS}})
    if resolve_after is not None and resolve_after <= timedelta(0):
        raise ValidationError({"resolve_after": _("Alerts must stay open for some time (more than 0 hours).")})
    specs = specs_build(candidate)
    end = now or timezone.now()
    start = end - timedelta(days=days)
    loaded_from = start - LOOKBACK

    # One query for the period's readings and the look-back before it, in arrival order.
    memory: dict[tuple[Any, str], list[tuple[datetime, int, datetime, PastReading]]] = defaultdict(list)
    events: list[tuple[datetime, int, str, Any]] = []  # (time, order, method, subject)
    reading_rows = Reading.objects.filter(
        Q(received_at__gte=loaded_from) | Q(effective_at__gte=loaded_from), erroneous_at=None,
    ).order_by("received_at", "id").values_list(*READING_ROW_COLUMNS[:-1])
    for row in reading_rows:
        reading = ReadingRow(*row)
        reading_id, received_at = reading.id, reading.received_at
        assert reading_id is not None and received_at is not None  # read from the table
        memory[(reading.patient_id, reading.measure)].append(
            (reading.effective_at, reading_id, received_at,
             PastReading(reading_id, reading.measure, reading.value, reading.value2, reading.effective_at)))
        if start <= received_at <= end:
            events.append((received_at, 0, "evaluate_reading", reading))
    for rows in memory.values():
        rows.sort(key=lambda r: (r[0], r[1]))
    responses = QuestionnaireResponse.objects.filter(
        status=ResponseStatus.COMPLETED, received_at__gte=start, received_at__lte=end,
    ).select_related("questionnaire").order_by("received_at", "id")
    events.extend((r.received_at, 1, "evaluate_response", r) for r in responses)
    missed = list(MissedOccurrence.objects.filter(
        occurrence__closes_at__gte=start - timedelta(days=MAX_DAYS), occurrence__closes_at__lte=end,
    ).select_related("occurrence", "occurrence__questionnaire").order_by("id"))
    counted = {"readings": sum(1 for e in events if e[1] == 0), "responses": sum(1 for e in events if e[1] == 1),
               "missed": 0}

    episodes: dict[Any, list[tuple[int, Any, Any]]] = defaultdict(list)
    for patient_id, program_id, first, last in TreatmentEpisode.objects.values_list(
            "patient_id", "program_id", "treatment_start", "end"):
        episodes[patient_id].append((program_id, first, last))
    overrides = {(o.rule_id, o.patient_id): o.params for o in RuleOverride.objects.filter(ended_at=None)}
    snoozes: dict[Any, list[Snooze]] = defaultdict(list)
    for snooze in Snooze.objects.filter(until__gt=start, created_at__lte=end):
        snoozes[snooze.patient_id].append(snooze)

    replay = _Replay(specs, episodes, overrides, snoozes, resolve_after)
    # Missed occurrences are evaluated per rule, once its grace has passed.
    for spec in specs:
        if not hasattr(KINDS[spec.kind], "evaluate_missed"):
            continue
        for row in missed:
            params = replay.params(spec, row.occurrence.patient_id)
            hours = getattr(params, "grace_hours", 0) if params is not None else 0
            grace = timedelta(hours=float(hours or 0))
            at = row.occurrence.closes_at + grace
            if start <= at <= end:
                events.append((at, 2, f"evaluate_missed:{spec.key}", row))
    counted["missed"] = len({e[3].pk for e in events if e[1] == 2})
    events.sort(key=lambda e: (e[0], e[1], e[3].pk))

    ctx = _ReplayContext(readings=memory, loaded_from=loaded_from)
    for at, _order, method, subject in events:
        replay.event(ctx.at(at), at, method, subject)
    return replay.result(start, end, counted)


class _Replay:
    def __init__(self, specs: list[RuleSpec], episodes: dict[Any, list[tuple[int, Any, Any]]],
                 overrides: dict[tuple[Any, Any], dict[str, Any]], snoozes: dict[Any, list[Snooze]],
                 resolve_after: timedelta | None) -> None:
        self.specs = specs
        self.by_key = {s.key: s for s in specs}
        self.episodes = episodes
        self.overrides = overrides
        self.snoozes = snoozes
        self.resolve_after = resolve_after
        self.counts = {s.key: Counts() for s in specs}
        self.patients: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
        self.spec_patients: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
        # (spec key, patient) -> [raised_at, severity] of the latest alert
        self.alerts: dict[tuple[str, Any], list[Any]] = {}
        self._parsed: dict[tuple[str, Any], Any] = {}
        self._by_method: dict[str, list[RuleSpec]] = {
            m: [s for s in specs if hasattr(KINDS[s.kind], m)] for m in ("evaluate_reading", "evaluate_response")
        }

    def params(self, spec: RuleSpec, patient_id: UUID) -> Any:  # the kind's own Params, or None
        override = self.overrides.get((spec.rule_id, patient_id)) if spec.rule_id else None
        key = (spec.key, patient_id if override is not None else None)
        if key not in self._parsed:
            try:
                self._parsed[key] = parse_params(spec.kind, merged_params(spec.params, override))
            except ValidationError:
                self._parsed[key] = None  # an override that no longer fits: counted as an error
        return self._parsed[key]

    def _programs(self, patient_id: UUID, day: date) -> set[int]:
        return {p for p, first, last in self.episodes.get(patient_id, ())
                if first <= day and (last is None or last >= day)}

    def event(self, ctx: Context, at: datetime, method: str, subject: Subject) -> None:
        if isinstance(subject, MissedOccurrence):  # method: "evaluate_missed:<the rule's key>"
            spec = self.by_key[method.split(":", 1)[1]]
            occurrence = subject.occurrence
            if spec.program_id in self._programs(occurrence.patient_id, timezone.localdate(occurrence.due_at)):
                self._run(ctx, at, spec, occurrence.patient_id, "evaluate_missed", subject)
            return
        if isinstance(subject, ReadingRow):  # method: "evaluate_reading"
            when, patient_id = subject.effective_at, patient_of(subject)
        else:  # "evaluate_response"
            when, patient_id = subject.authored_at, subject.patient_id
        programs = self._programs(patient_id, timezone.localdate(when))
        for spec in self._by_method[method]:
            if spec.program_id in programs:
                self._run(ctx, at, spec, patient_id, method, subject)

    def _run(self, ctx: Context, at: datetime, spec: RuleSpec, patient_id: UUID, method: str,
             subject: Subject) -> None:
        counts = self.counts[spec.key]
        params = self.params(spec, patient_id)
        if params is None:
            counts.errors += 1
            return
        try:
            finding = getattr(KINDS[spec.kind], method)(params, subject, ctx)
        except DatabaseError:
            raise
        except Exception:  # noqa: BLE001 - a failing rule is counted, the replay goes on
            counts.errors += 1
            return
        if finding is None or self._snoozed(patient_id, finding, at):
            return
        counts.findings += 1
        severity = finding.severity or spec.severity
        key = (spec.key, patient_id)
        alert = self.alerts.get(key)
        if alert is not None:
            resolved_at = None if self.resolve_after is None else alert[0] + self.resolve_after
            if resolved_at is None or at < resolved_at:
                if _RANK[severity] > _RANK[alert[1]]:  # evidence on the open alert turns it red
                    alert[1] = severity
                    counts.yellow -= 1
                    counts.red += 1
                return
            if at < resolved_at + spec.cooldown and _RANK[severity] <= _RANK[alert[1]]:
                return  # cooldown: evidence on the resolved alert
        self.alerts[key] = [at, severity]
        counts.alerts += 1
        self.spec_patients[spec.key][patient_id] += 1
        if severity == Severity.RED:
            counts.red += 1
        else:
            counts.yellow += 1
        if spec.in_current:
            self.patients[patient_id][0] += 1
        if spec.in_candidate:
            self.patients[patient_id][1] += 1

    def _snoozed(self, patient_id: UUID, finding: Finding, at: datetime) -> bool:
        if finding.snooze is None:
            return False
        measure, component, value = finding.snooze
        for s in self.snoozes.get(patient_id, ()):
            active = s.created_at <= at < s.until and (s.ended_at is None or at < s.ended_at)
            if active and (s.measure, s.component) == (measure, component) and (
                    s.low is None or value >= s.low) and (s.high is None or value <= s.high):
                return True
        return False

    def result(self, start: datetime, end: datetime, events: dict[str, int]) -> Result:
        totals = {"current": Counts(), "candidate": Counts()}
        for spec in self.specs:
            c = self.counts[spec.key]
            for name, counted in (("current", spec.in_current), ("candidate", spec.in_candidate)):
                if counted:
                    t = totals[name]
                    t.alerts, t.red, t.yellow = t.alerts + c.alerts, t.red + c.red, t.yellow + c.yellow
                    t.findings, t.errors = t.findings + c.findings, t.errors + c.errors
        return Result(start, end, self.resolve_after, self.specs, self.counts, dict(self.patients), events, totals,
                      {key: dict(per) for key, per in self.spec_patients.items()})
