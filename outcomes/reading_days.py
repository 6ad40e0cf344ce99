"""The reading days the adherence indicator counts (outcomes.models.ReadingDay), kept up to date
by the indicator refresh instead of derived from every reading on each refresh (10 M readings:
the distinct Danish days were 45–95 s of the refresh on their own).

Each refresh, on PostgreSQL:

1. Finds ``M``, the highest reading id, while briefly holding a SHARE lock on the readings
   table and the evaluation inbox (a bulk upload reserves its ids in the statement that writes
   its inbox row, and writes its readings only after: monitoring.ingest.reading_writer_tables):
   no transaction that writes readings is in flight at that moment, so every reading with an id
   up to ``M`` is committed (or rolled back) and stays as it is, except for an erroneous
   mark. The lock is asked for with a short ``lock_timeout``; a stored reading waits at most that
   long, once per refresh. When the lock is not granted in time (a long bulk load), ``M`` is
   read without it and the mark below does not move, so the next refresh reads those readings
   again: nothing is missed, some work is repeated.
2. Adds the days of the readings with ids after the mark's ``scanned_to`` (an index range on the
   primary key), not marked erroneous; days already there are left as they are.
3. Takes back the days of readings marked erroneous since the last check (a partial index on
   ``erroneous_at``, monitoring.models.Reading) on which no unmarked reading is left. The check
   starts ``ERRONEOUS_MARGIN`` before the last one: a mark's time is the clinician's request's,
   which may commit a little later.
4. Moves the mark to ``M`` (when the lock was granted) and the erroneous check to the moment of
   step 1.

The first run (the mark at 0) reads every reading once. ``reading_days_rebuild`` starts again
from nothing (e.g. after a restore of the readings table)."""

# ruff: noqa: S608 — the table names are the models' own; values are parameters.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction

from monitoring.ingest import reading_writer_tables
from monitoring.models import Reading
from outcomes.models import ReadingDay, ReadingDayMark

ERRONEOUS_MARGIN = timedelta(minutes=10)
LOCK_TIMEOUT = "200ms"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
ANALYZE_AFTER = 100_000  # days added in one update after which the table is vacuumed and analysed
LOCAL_DAY = "(effective_at AT TIME ZONE 'Europe/Copenhagen')::date"


@dataclass(frozen=True)
class ReadingDaysUpdate:
    scanned_from: int  # readings after this id were read
    scanned_to: int  # … up to this one
    mark_moved: bool  # False when the lock was not granted: the same readings are read again next time
    days_added: int
    days_removed: int


def _high_water(cursor: Any) -> tuple[int, datetime, bool]:
    """(the highest reading id, the database's time, whether no writer was in flight)."""
    reading = Reading._meta.db_table
    try:
        with transaction.atomic():
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # Not the readings alone: a bulk upload holds ids from its reservation on, before it
            # writes a reading (monitoring.ingest.storage.reading_writer_tables).
            cursor.execute(f"LOCK TABLE {', '.join(reading_writer_tables())} IN SHARE MODE")
            cursor.execute(f"SELECT COALESCE(max(id), 0), now() FROM {reading}")
            top, at = cursor.fetchone()
            cursor.execute("SET LOCAL lock_timeout = DEFAULT")
        return int(top), at, True
    except OperationalError as exc:  # the lock not granted in time: read on, without moving the mark
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        cursor.execute(f"SELECT COALESCE(max(id), 0), now() FROM {reading}")
        top, at = cursor.fetchone()
        return int(top), at, False


def reading_days_update() -> ReadingDaysUpdate:
    """Bring ReadingDay up to the readings stored now (see the module's docstring). PostgreSQL
    only; two runs at once queue on the mark's row. Call it outside a transaction (the refresh
    does): inside one, the lock on the readings is held until that transaction ends."""
    if connection.vendor != "postgresql":
        raise NotImplementedError("Reading days are kept on PostgreSQL only.")
    days, reading = ReadingDay._meta.db_table, Reading._meta.db_table
    with connection.cursor() as cursor:
        top, at, certain = _high_water(cursor)
        with transaction.atomic():
            mark, _created = ReadingDayMark.objects.select_for_update().get_or_create(pk=1)
            start = mark.scanned_to
            added = removed = 0
            if top > start:
                empty = start == 0 and not ReadingDay.objects.exists()
                cursor.execute(
                    f"INSERT INTO {days} (patient_id, day) SELECT DISTINCT patient_id, {LOCAL_DAY} FROM {reading} "
                    f"WHERE id > %(start)s AND id <= %(top)s AND erroneous_at IS NULL"
                    + ("" if empty else " ON CONFLICT DO NOTHING"), {"start": start, "top": top})
                added = cursor.rowcount
            if mark.erroneous_checked_at is not None:
                cursor.execute(
                    f"DELETE FROM {days} d USING (SELECT DISTINCT patient_id, {LOCAL_DAY} AS day FROM {reading} "
                    f"WHERE erroneous_at IS NOT NULL AND erroneous_at >= %(since)s) x "
                    f"WHERE d.patient_id = x.patient_id AND d.day = x.day AND NOT EXISTS ("
                    f"SELECT 1 FROM {reading} r WHERE r.patient_id = x.patient_id AND r.erroneous_at IS NULL "
                    f"AND (r.effective_at AT TIME ZONE 'Europe/Copenhagen')::date = x.day)",
                    {"since": mark.erroneous_checked_at - ERRONEOUS_MARGIN})
                removed = cursor.rowcount
            # Before the first check every mark is in already: the first scan skipped marked readings.
            mark.erroneous_checked_at = at if certain or mark.erroneous_checked_at is None else min(
                at, mark.erroneous_checked_at)
            if certain:
                mark.scanned_to = max(top, start)
            mark.updated_at = at
            mark.save()
        if added > ANALYZE_AFTER:
            # The first build, or a big load: the planner must see the new rows, and the
            # adherence query's index-only look-ups (a patient's days in an island) must not
            # visit the heap, whose rows the build wrote in no useful order (50 s instead of 6 s
            # at 8 M days). VACUUM cannot run inside a transaction (e.g. a test's): then ANALYZE.
            cursor.execute(f"ANALYZE {days}" if connection.in_atomic_block else f"VACUUM (ANALYZE) {days}")
    return ReadingDaysUpdate(scanned_from=start, scanned_to=top, mark_moved=certain, days_added=added,
                             days_removed=removed)


def reading_days_rebuild() -> ReadingDaysUpdate:
    """Forget the reading days and read every reading again."""
    with transaction.atomic():
        ReadingDayMark.objects.select_for_update().filter(pk=1).delete()
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {ReadingDay._meta.db_table}")
    return reading_days_update()
