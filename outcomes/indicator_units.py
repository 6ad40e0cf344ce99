"""The Python definition of each indicator's units: the reference computation, used on SQLite
and by the tests that check the SQL twins (outcomes.indicator_sql) give the same answers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from alerts.models import Outcome, Severity
from outcomes.indicator_core import DEFAULT_RED_ACK_PROMISE, Dataset, EpisodeFacts, Unit, local_day
from outcomes.timepoints import DEFAULT_TIMEPOINTS, Timepoint
from questionnaires.library.mid import MinimalImportantDifference
from schedules.models import OccurrenceStatus

# --- unit builders ------------------------------------------------------------------------------

def _window_closed(e: EpisodeFacts, t: Timepoint, today: date) -> bool:
    return e.start + timedelta(days=t.end_day) < today


def response_rate_units(t: Timepoint) -> Callable[[Dataset], list[Unit]]:
    def units(ds: Dataset) -> list[Unit]:
        out = []
        for e in ds.episodes:
            if not _window_closed(e, t, ds.today):
                continue
            answered = any(t.start_day <= (day - e.start).days <= t.end_day
                           for day, _at, _s in ds.responses.get(e.patient_id, ()))
            out.append(Unit(e, numerator=1 if answered else 0))
        return out
    return units


def _score(scores: list[dict[str, Any]], code: str) -> float | None:
    for s in scores:
        if (s.get("code") or {}).get("code") == code and s.get("value") is not None:
            return float(s["value"])
    return None


def score_pair(responses: list[tuple[date, datetime, list[dict[str, Any]]]], e: EpisodeFacts, code: str,
               t: Timepoint) -> tuple[float, float] | None:
    """(baseline, follow-up) score of an episode, or None when either is missing.

    Baseline: the last score in the baseline window (nearest the treatment start). Follow-up:
    the score nearest the timepoint's target day; of two equally near, the earlier."""
    base = DEFAULT_TIMEPOINTS.get("baseline")
    baseline: float | None = None
    best: tuple[int, datetime] | None = None
    follow: float | None = None
    for day, at, scores in responses:
        d = (day - e.start).days
        value = _score(scores, code)
        if value is None:
            continue
        if base.start_day <= d <= base.end_day:
            baseline = value  # responses come in time order: the last one wins
        elif t.start_day <= d <= t.end_day:
            key = (abs(d - t.target_day), at)
            if best is None or key < best:
                best, follow = key, value
    if baseline is None or follow is None:
        return None
    return baseline, follow


def classify_change(change: float, mid: MinimalImportantDifference) -> str:
    better = -change if mid.lower_is_better else change
    if better >= mid.improvement:
        return "improved"
    if -better >= mid.worsening:
        return "worse"
    return "unchanged"


def prom_change_units(mid: MinimalImportantDifference, t: Timepoint) -> Callable[[Dataset], list[Unit]]:
    def units(ds: Dataset) -> list[Unit]:
        out = []
        for e in ds.episodes:
            pair = score_pair(ds.responses.get(e.patient_id, []), e, mid.score_code, t)
            if pair is None:
                continue
            change = pair[1] - pair[0]
            out.append(Unit(e, value=change, category=classify_change(change, mid)))
        return out
    return units


def _patient_days(e: EpisodeFacts, today: date) -> int:
    last = min(e.end, today - timedelta(days=1)) if e.end else today - timedelta(days=1)
    return max(0, (last - e.start).days + 1)


def alert_rate_units(severity: str | None, kind: str | None = None) -> Callable[[Dataset], list[Unit]]:
    def units(ds: Dataset) -> list[Unit]:
        counts: dict[int, int] = defaultdict(int)
        for a in ds.alerts:
            if (severity and a["severity"] != severity) or (kind and a["rule__kind"] != kind):
                continue
            day = local_day(a["raised_at"])
            e = ds.episode_for(a["patient_id"], day)
            if e is not None and day < ds.today:
                counts[e.episode_id] += 1
        out = []
        for e in ds.episodes:
            days = _patient_days(e, ds.today)
            if days:
                out.append(Unit(e, numerator=counts.get(e.episode_id, 0), denominator=days))
        return out
    return units


def _alert_units(ds: Dataset, keep: Callable[[Mapping[str, Any]], bool],
                 make: Callable[[EpisodeFacts, Mapping[str, Any]], Unit | None]) -> list[Unit]:
    out = []
    for a in ds.alerts:
        if not keep(a):
            continue
        e = ds.episode_for(a["patient_id"], local_day(a["raised_at"]))
        if e is None:
            continue
        unit = make(e, a)
        if unit is not None:
            out.append(unit)
    return out


def no_action_units(ds: Dataset) -> list[Unit]:
    return _alert_units(ds, lambda a: a["resolved_at"] is not None,
                        lambda e, a: Unit(e, numerator=1 if a["outcome"] == Outcome.NO_ACTION else 0))


def red_hours_units(field_name: str) -> Callable[[Dataset], list[Unit]]:
    def units(ds: Dataset) -> list[Unit]:
        return _alert_units(
            ds, lambda a: a["severity"] == Severity.RED and a[field_name] is not None,
            lambda e, a: Unit(e, value=(a[field_name] - a["raised_at"]).total_seconds() / 3600))
    return units


def red_ack_on_time_units(ds: Dataset) -> list[Unit]:
    def make(e: EpisodeFacts, a: Mapping[str, Any]) -> Unit | None:
        promise = ds.ack_promise.get(e.team_id, DEFAULT_RED_ACK_PROMISE)
        deadline = a["raised_at"] + promise
        if deadline > ds.now:
            return None  # the promise can still be kept: not yet judged
        on_time = a["acknowledged_at"] is not None and a["acknowledged_at"] <= deadline
        return Unit(e, numerator=1 if on_time else 0)
    return _alert_units(ds, lambda a: a["severity"] == Severity.RED, make)


def review_on_time_units(ds: Dataset) -> list[Unit]:
    out = []
    for patient_id, authored, due, reviewed in ds.reviews:
        if due > ds.now and reviewed is None:
            continue  # not due yet and not reviewed: not yet judged
        e = ds.episode_for(patient_id, local_day(authored))
        if e is not None:
            out.append(Unit(e, numerator=1 if reviewed is not None and reviewed <= due else 0))
    return out


def reading_adherence_units(ds: Dataset) -> list[Unit]:
    out = []
    for e in ds.episodes:
        lent = ds.lendings.get(e.patient_id)
        if not lent:
            continue
        last = min(e.end or ds.today, ds.today - timedelta(days=1))
        expected: set[date] = set()
        for start, stop in lent:
            day = max(start, e.start)
            stop_day = min(stop or last, last)
            while day <= stop_day:
                expected.add(day)
                day += timedelta(days=1)
        if expected:
            have = len(expected & ds.reading_days.get(e.patient_id, set()))
            out.append(Unit(e, numerator=have, denominator=len(expected)))
    return out


def missed_questionnaire_units(ds: Dataset) -> list[Unit]:
    by_episode: dict[int, list[str]] = defaultdict(list)
    for episode_id, status in ds.occurrences:
        by_episode[episode_id].append(status)
    out = []
    for e in ds.episodes:
        statuses = by_episode.get(e.episode_id)
        if statuses:
            out.append(Unit(e, numerator=sum(1 for s in statuses if s == OccurrenceStatus.MISSED),
                            denominator=len(statuses)))
    return out


