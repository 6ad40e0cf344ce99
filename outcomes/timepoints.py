"""Outcome timepoints: windows of days relative to the index date (the treatment start).

Days, not calendar months: "3 months" is day 91 (13 weeks), "6 months" day 182, "12 months" day
365, each ± 30 days. Whole days make the windows the same length for every patient and let the
database assign responses with plain date arithmetic; a calendar month would move a window by up
to three days depending on the start month, which is well inside the ± 30-day tolerance.

A day is a Danish calendar day (Europe/Copenhagen): an answer given at 00:30 on the day after
treatment start counts as day 1 even though it is still day 0 in UTC.

Windows are inclusive at both ends and must not overlap, so every day belongs to at most one
timepoint (``TimepointSet`` refuses overlapping definitions, so a future per-programme override
cannot make a response count twice).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class TimepointDefinitionError(ValueError):
    pass


@dataclass(frozen=True)
class Timepoint:
    code: str  # stable, used in exports and URLs: "baseline", "3m", "6m", "12m"
    label: str | Promise
    target_day: int  # days after the index date
    start_day: int  # first day of the window, inclusive
    end_day: int  # last day of the window, inclusive

    def __post_init__(self) -> None:
        if not self.code:
            raise TimepointDefinitionError("A timepoint needs a code.")
        if not self.start_day <= self.target_day <= self.end_day:
            raise TimepointDefinitionError(
                f"Timepoint {self.code}: the window {self.start_day}..{self.end_day} must contain "
                f"its target day {self.target_day}.")

    def window(self, index_date: date) -> tuple[date, date]:
        """The first and last calendar day of the window for an episode starting on ``index_date``."""
        return index_date + timedelta(days=self.start_day), index_date + timedelta(days=self.end_day)


@dataclass(frozen=True)
class TimepointSet:
    timepoints: tuple[Timepoint, ...]

    def __post_init__(self) -> None:
        if not self.timepoints:
            raise TimepointDefinitionError("A timepoint set needs at least one timepoint.")
        codes = [t.code for t in self.timepoints]
        if len(set(codes)) != len(codes):
            raise TimepointDefinitionError(f"Timepoint codes must be unique: {codes}.")
        ordered = sorted(self.timepoints, key=lambda t: t.start_day)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if after.start_day <= before.end_day:
                raise TimepointDefinitionError(
                    f"Timepoints {before.code} ({before.start_day}..{before.end_day}) and {after.code} "
                    f"({after.start_day}..{after.end_day}) overlap: a response would count twice.")
        object.__setattr__(self, "timepoints", tuple(ordered))

    def __iter__(self) -> Iterator[Timepoint]:
        return iter(self.timepoints)

    def __len__(self) -> int:
        return len(self.timepoints)

    def get(self, code: str) -> Timepoint:
        for t in self.timepoints:
            if t.code == code:
                return t
        raise KeyError(code)

    def timepoint_for_day(self, day: int) -> Timepoint | None:
        """The timepoint whose window contains ``day`` (days since the index date), if any."""
        for t in self.timepoints:
            if t.start_day <= day <= t.end_day:
                return t
        return None

    def timepoint_for(self, *, index_date: date, on: date) -> Timepoint | None:
        """The timepoint a calendar day falls in, for an episode starting on ``index_date``."""
        return self.timepoint_for_day((on - index_date).days)


def _months(code: str, label: str | Promise, day: int) -> Timepoint:
    return Timepoint(code=code, label=label, target_day=day, start_day=day - 30, end_day=day + 30)


DEFAULT_TIMEPOINTS = TimepointSet((
    # Baseline: the month before treatment up to and including the day it starts (day 0), the
    # last moment a patient reports without the treatment's effects.
    Timepoint(code="baseline", label=_("Baseline"), target_day=0, start_day=-30, end_day=0),
    _months("3m", _("3 months"), 91),
    _months("6m", _("6 months"), 182),
    _months("12m", _("12 months"), 365),
))


def timepoints_for_program(program: object | None = None) -> TimepointSet:
    """The timepoints of a programme. Every programme uses the default set today; a per-programme
    override belongs here, so callers already ask per programme."""
    return DEFAULT_TIMEPOINTS
