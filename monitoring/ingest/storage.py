"""Storing parsed readings: de-duplication against the batch and the database (one query), then
one COPY (PostgreSQL; ``bulk_create`` elsewhere) in one transaction, or for one reading with a
client_id one statement that also writes its evaluation inbox row (``_insert_one``). Either way the
inbox row (alerts.evaluation, ADR 0020) is written with the readings, and evaluation is asked for
after commit."""

import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.models import User
from alerts.evaluation import PendingEvaluation, enqueue, reading_enqueue_sql, request_soon
from alerts.evaluation import Source as EvaluationSource
from monitoring.ingest.parsing import Errors
from monitoring.models import Device, Reading, Source
from monitoring.rows import READING_ROW_COLUMNS, ReadingRow
from patients.models import Patient
from proplatform.db import prepared_cursor

if TYPE_CHECKING:
    import psycopg


@dataclass(slots=True, eq=False)
class ItemResult:
    """One item's outcome. ``id``/``unusual`` are set when the reading is stored (201) or was
    already (200); ``reading`` builds the model instance on first use."""

    index: int
    status: int
    errors: Errors = field(default_factory=dict)
    id: int | None = None
    unusual: bool = False
    _readings: "_Readings | None" = field(default=None, repr=False)
    _reading: Reading | None = field(default=None, repr=False)

    @property
    def reading(self) -> Reading | None:
        if self._reading is None and self.id is not None and self._readings is not None:
            self._reading = self._readings.get(self.id)
        return self._reading

    @property
    def stored(self) -> ReadingRow | Reading | None:
        """What the API answers for the reading (monitoring.api.reading_json): for one this
        request stored, its fields without building the model instance, which costs as much
        as writing the answer (the device fast path, ADR 0016)."""
        if self._reading is None and self._readings is not None and self.id in self._readings.new:
            return self._readings.stored(self.id)
        return self.reading

    def as_json(self) -> dict[str, Any]:
        if self.id is not None:
            return {"index": self.index, "status": self.status, "id": self.id, "unusual": self.unusual}
        return {"index": self.index, "status": self.status, "errors": self.errors}


# --- storing: one transaction per batch ------------------------------------------------------

def _same(earlier: ReadingRow, p: ReadingRow) -> bool:
    return (earlier.measure, earlier.value, earlier.value2, earlier.effective_at) == (
        p.measure, p.value, p.value2, p.effective_at)


def _natural_key(device_id: int | None, measure: str, effective_at: datetime,
                 value: Decimal, value2: Decimal | None) -> tuple[Any, ...]:
    # Equal Decimals hash equally (95 == 95.000) and so do aware datetimes of the same instant.
    return (device_id, measure, effective_at, value, value2)


class _Readings:
    """Builds the ``Reading`` model instances of one batch's results when a caller asks for
    them: new ones from the parsed values (no query), earlier ones with one query for all."""

    def __init__(self, *, patient_id: uuid.UUID, source: Source, now: datetime, entered_by: User | None) -> None:
        self.patient_id, self.source, self.now, self.entered_by = patient_id, source, now, entered_by
        self.new: dict[int, ReadingRow] = {}
        self.earlier: list[int] = []
        self.built: dict[int, Reading] = {}

    def get(self, pk: int) -> Reading:
        if pk not in self.built:
            p = self.new.get(pk)
            if p is not None:
                self.built[pk] = self._build(p)
            else:
                self.built.update(Reading.objects.in_bulk(self.earlier))
        return self.built[pk]

    def stored(self, pk: int) -> ReadingRow:
        return self.new[pk]

    def add(self, p: ReadingRow) -> None:
        """Record ``p`` (its id set) as stored by this batch, with the batch's patient, time and source."""
        assert p.id is not None  # set by the insert just before
        p.patient_id, p.received_at, p.source = self.patient_id, self.now, self.source
        self.new[p.id] = p

    def _build(self, p: ReadingRow) -> Reading:
        reading = Reading(
            pk=p.id, patient_id=self.patient_id, device_id=p.device_id, measure=p.measure, value=p.value,
            value2=p.value2, unit=p.unit, original=p.original, unusual=p.unusual,
            effective_at=p.effective_at, received_at=self.now, source=self.source,
            client_id=p.client_id, entered_by=self.entered_by,
        )
        reading._state.adding = False
        reading._state.db = Reading.objects.db
        return reading


def _lock_patient(patient: Patient) -> None:
    """Serialise concurrent ingests of one patient, so that the duplicate check below and the
    insert see the same world. A transaction-level advisory lock: released at commit.

    Repeats are also found by device, measure, time and value, under any client_id or none, and
    no constraint guards those: a gateway's retry under a new client_id while the first upload
    is still being stored waits here and then finds it. (uniq_reading_client_id alone would
    serialise repeats of the same client_id only.) The device fast path's one statement takes
    no lock: its window is the statement itself, about a millisecond (docs/architecture.md)."""
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"reading:{patient.pk}"], prepare=True)


def _stored_in_one_statement(candidates: list[ReadingRow], *, results: list[ItemResult | None],
                             readings: _Readings, still_lent: tuple[int, Device] | None = None) -> bool:
    """Store a single candidate with a client_id by one statement (_insert_one), where it
    applies: PostgreSQL, and either autocommit or a caller's atomic block (in Django's manual
    transaction mode on_commit would refuse). False if it does not apply, or if the client_id is
    stored already: then the general path answers the repeat (200) or the conflict (409). With
    ``still_lent`` (a token id and the device it was looked up with), also False if the token or
    the device's lending changed since (_insert_one)."""
    if not (len(candidates) == 1 and candidates[0].client_id and connection.vendor == "postgresql"
            and (connection.get_autocommit() or connection.in_atomic_block)):
        return False
    batch = _insert_one(candidates[0], readings, still_lent=still_lent)
    if batch is None:
        return False
    _stored(candidates, batch=batch, results=results, readings=readings)
    return True


# Two index look-ups, one per way a repeat is found, each written so that its index serves all


# every reading of the patient (11 ms per 100-item upload for a patient with 10,000 readings).
_EARLIER_COLUMNS = ", ".join(READING_ROW_COLUMNS[:-1])  # ReadingRow's order; not ``original``
_EARLIER_BY_CLIENT_ID = f"""
    SELECT {_EARLIER_COLUMNS}
    FROM monitoring_reading WHERE patient_id = %(patient)s AND client_id = ANY(%(client_ids)s)
"""  # noqa: S608 - fixed column names
_EARLIER_BY_TIME = f"""
    SELECT {_EARLIER_COLUMNS}
    FROM monitoring_reading WHERE patient_id = %(patient)s AND measure = ANY(%(measures)s)
        AND effective_at = ANY(%(times)s)
"""  # noqa: S608 - fixed column names
_EARLIER_SQL = {True: f"{_EARLIER_BY_CLIENT_ID} UNION {_EARLIER_BY_TIME}", False: _EARLIER_BY_TIME}


def _earlier(patient: Patient, candidates: list[ReadingRow]) -> list[ReadingRow]:
    """The patient's stored readings that candidates may repeat: the same client_id (served by
    uniq_reading_client_id), or the same measure and effective time (reading_trend), with a
    client_id or without: a reading is the same reading under another client_id too."""
    client_ids = [p.client_id for p in candidates if p.client_id]
    times = [p.effective_at for p in candidates]
    if connection.vendor == "postgresql":
        # Array parameters instead of a placeholder per value: at 1,000 items, binding a
        # thousand placeholders cost more than running the query. The client_id look-up is
        # left out when no item has one.
        params = {"patient": patient.pk, "client_ids": client_ids, "times": times,
                  "measures": sorted({p.measure for p in candidates})}
        with prepared_cursor() as cursor:
            cursor.execute(_EARLIER_SQL[bool(client_ids)], params, prepare=True)
            return [ReadingRow(*row) for row in cursor.fetchall()]
    match = Q(pk__in=[])
    if client_ids:
        match |= Q(client_id__in=client_ids)
    if times:
        match |= Q(effective_at__in=times)
    return [ReadingRow(*row) for row in Reading.objects.filter(patient=patient).filter(match)
            .values_list(*READING_ROW_COLUMNS[:-1])]


def _store(*, patient: Patient, candidates: list[ReadingRow], results: list[ItemResult | None],
           readings: _Readings) -> None:
    if not candidates:
        return
    _lock_patient(patient)
    by_client: dict[str, ReadingRow] = {}
    by_key: dict[tuple[Any, ...], ReadingRow] = {}
    for row in _earlier(patient, candidates):
        if row.client_id:
            by_client[row.client_id] = row
        by_key.setdefault(_natural_key(row.device_id, row.measure, row.effective_at, row.value, row.value2), row)
        assert row.id is not None  # read from the table
        readings.earlier.append(row.id)

    new: list[ReadingRow] = []
    pending: list[tuple[int, ReadingRow]] = []  # 200s, answered once every id is known
    for p in candidates:
        key = _natural_key(p.device_id, p.measure, p.effective_at, p.value, p.value2)
        if p.client_id and (earlier := by_client.get(p.client_id)) is not None:
            if _same(earlier, p):
                pending.append((p.index, earlier))
            else:
                results[p.index] = ItemResult(p.index, 409, errors={"client_id": [
                    _("This client_id was already used for another reading.")]})
            continue
        if (earlier := by_key.get(key)) is not None:  # the same reading, under another client_id or none
            pending.append((p.index, earlier))
            continue
        new.append(p)
        if p.client_id:
            by_client[p.client_id] = p
        by_key.setdefault(key, p)
    if new:
        _stored(new, batch=_insert(new, readings), results=results, readings=readings)
    for index, earlier in pending:
        results[index] = ItemResult(index, 200, id=earlier.id, unusual=earlier.unusual, _readings=readings)


def _stored(new: list[ReadingRow], *, batch: int, results: list[ItemResult | None], readings: _Readings) -> None:
    """Answer 201 for the readings just inserted as pending ``batch``, and ask for their
    evaluation once it is committed."""
    # robust: if the broker is down the readings stay committed and the 201 stays true; the
    # sweep (alerts.evaluation.sweep) evaluates them later.
    transaction.on_commit(lambda: request_soon(batch), robust=True)
    for p in new:
        results[p.index] = ItemResult(p.index, 201, id=p.id, unusual=p.unusual, _readings=readings)


# Columns written by COPY, and without the first ("id": its default) by _INSERT_ONE_SQL; every
# other column of monitoring_reading has a NULL/blank default. _row gives their values.
_COPY_COLUMNS = ("id", "patient_id", "device_id", "measure", "value", "value2", "unit", "original", "unusual",
                 "erroneous_reason", "effective_at", "received_at", "source", "client_id", "entered_by_id")


def _row(p: ReadingRow, readings: _Readings, entered_by_id: int | None) -> tuple[Any, ...]:
    """The values of _COPY_COLUMNS for one parsed item (``p.id`` None until it is reserved)."""
    return (
        p.id, readings.patient_id, p.device_id, p.measure, p.value, p.value2, p.unit,
        None if p.original is None else orjson.dumps(p.original).decode(), p.unusual, "",
        p.effective_at, readings.now, readings.source, p.client_id, entered_by_id,
    )


def _entered_by_id(readings: _Readings) -> int | None:
    return readings.entered_by.pk if readings.entered_by is not None else None
_COPY_SQL = f"COPY monitoring_reading ({', '.join(_COPY_COLUMNS)}) FROM STDIN"


# Reserves the ids and writes the evaluation inbox's row that lists them (ADR 0009, 0020) in one
# round trip.
_RESERVE_SQL = f"""
    WITH ids AS (
        SELECT nextval(%(seq)s::regclass) AS id FROM generate_series(1, %(n)s)
    ), pending AS (
        {reading_enqueue_sql(ids="jsonb_agg(id ORDER BY id)", size="%(n)s", at="%(now)s")} FROM ids RETURNING id
    )
    SELECT ids.id, (SELECT id FROM pending) FROM ids ORDER BY ids.id
"""  # noqa: S608 - the inbox's INSERT is fixed text; every value is a parameter


def reading_writer_tables() -> tuple[str, ...]:
    """The tables a transaction that stores readings holds (ROW EXCLUSIVE) from the moment it has
    reading ids, until it commits: the readings, and the evaluation inbox — the COPY path reserves
    its ids in the statement that writes the inbox row (_RESERVE_SQL) and only then writes the
    readings, so in between it holds the inbox but not yet the readings. Whoever needs "every
    reading id up to this one is final" (outcomes.reading_days) locks all of them in SHARE mode."""
    return (Reading._meta.db_table, PendingEvaluation._meta.db_table)


_sequence: dict[str, str] = {}  # database name -> name of monitoring_reading.id's sequence


def _reading_sequence(cursor: "psycopg.Cursor[Any]") -> str:
    """The name of monitoring_reading.id's sequence, looked up once per process and database:
    calling pg_get_serial_sequence for every reserved id cost more than the nextval itself."""
    database = cursor.connection.info.dbname
    if database not in _sequence:
        cursor.execute("SELECT pg_get_serial_sequence('monitoring_reading', 'id')")
        row = cursor.fetchone()
        if row is None or row[0] is None:  # a schema not made by our migrations
            raise RuntimeError("monitoring_reading.id has no sequence")
        _sequence[database] = row[0]
    return _sequence[database]


# One new reading and its pending batch (ADR 0009) in one statement. Nothing is inserted, and
# the statement returns no row, when the patient already has the reading: its client_id
# (uniq_reading_client_id as the arbiter; a concurrent insert of it is waited for), or the same
# device, measure, time and value under another client_id (a gateway that makes up a new id
# for each retry). Parameters are named: psycopg binds each name once, however often it is used.
_INSERT_ONE_SQL = """
    WITH reading AS (
        INSERT INTO monitoring_reading ({columns})
        SELECT {values}
        WHERE {still_lent} NOT EXISTS (
            SELECT 1 FROM monitoring_reading e
            WHERE e.patient_id = %(patient_id)s AND e.measure = %(measure)s AND e.effective_at = %(effective_at)s
                AND e.value = %(value)s AND e.value2 IS NOT DISTINCT FROM %(value2)s
                AND e.device_id IS NOT DISTINCT FROM %(device_id)s)
        ON CONFLICT (patient_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id
    ), pending AS (
        {pending} FROM reading RETURNING id
    )
    SELECT reading.id, pending.id FROM reading, pending
"""
# ... and, for the device fast path, only if the device's token is unrevoked and the device is
# lent to the same patient for the same period as when the token was looked up (ADR 0016).
_STILL_LENT_SQL = """
    EXISTS (
        SELECT 1 FROM monitoring_devicetoken t JOIN monitoring_device d ON d.id = t.device_id
        WHERE t.id = %(token_id)s AND t.revoked_at IS NULL AND d.id = %(lent_device_id)s
            AND d.patient_id = %(lent_patient_id)s AND d.lent_from = %(lent_from)s
            AND d.lent_to IS NOT DISTINCT FROM %(lent_to)s::date) AND
"""


@lru_cache(maxsize=2)
def _insert_one_sql(still_lent: bool) -> str:
    """The statement's text, worked out once per process for PostgreSQL (the only database it
    runs on)."""
    columns = _COPY_COLUMNS[1:]
    # A SELECT, to take a WHERE; its parameters cast, as VALUES would take the columns' types.
    by_column = {f.column: f for f in Reading._meta.concrete_fields}
    casts = []
    for c in columns:
        db_type = by_column[c].cast_db_type(connection)
        assert db_type is not None  # every concrete column has a type
        # Without a length: a cast to varchar(n) would cut a longer value where VALUES refuses it.
        casts.append(f"%({c})s::" + re.sub(r"^varchar\(\d+\)$", "varchar", db_type))
    values = ", ".join(casts)
    pending = reading_enqueue_sql(ids="jsonb_build_array(id)", size="1", at="%(received_at)s")
    return _INSERT_ONE_SQL.format(columns=", ".join(columns), values=values, pending=pending,
                                  still_lent=_STILL_LENT_SQL if still_lent else "")


def _insert_one(p: ReadingRow, readings: _Readings, *, still_lent: tuple[int, Device] | None = None) -> int | None:
    """Store one reading that has a client_id (PostgreSQL); returns its pending batch's id, or
    None if nothing was stored: the patient already has it (its client_id, or the same reading
    under another one), or (``still_lent``: a token id and the device it was looked up with) the
    token or the device's lending changed.
    A device's single upload, the common case, in one round trip: outside a transaction the
    statement commits on its own, all or nothing, where the general path (_store) costs BEGIN,
    the repeat lookup, the id reservation, COPY and COMMIT. Inside one (a caller's atomic block)
    it runs in a savepoint, so that a failure leaves the caller's transaction usable, as the
    general path does."""
    params: dict[str, Any] = dict(zip(_COPY_COLUMNS, _row(p, readings, _entered_by_id(readings)), strict=True))
    if still_lent is not None:
        token_id, device = still_lent
        params.update(token_id=token_id, lent_device_id=device.pk, lent_patient_id=device.patient_id,
                      lent_from=device.lent_from, lent_to=device.lent_to)
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, prepared_cursor() as cursor:
        cursor.execute(_insert_one_sql(still_lent is not None), params, prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    p.id = row[0]
    readings.add(p)
    batch: int = row[1]
    return batch


def _insert(new: list[ReadingRow], readings: _Readings) -> int:
    """Insert new readings, set their ids and record them as a pending batch; returns the
    batch's id. On PostgreSQL with COPY (ids reserved from the sequence first): Django's
    bulk_create spends most of a 1,000-row batch compiling the statement and building model
    instances. Elsewhere (SQLite, the embedded shape) bulk_create."""
    if connection.vendor != "postgresql":
        built = [readings._build(p) for p in new]
        for r in built:
            r._state.adding = True
        Reading.objects.bulk_create(built)
        for p, r in zip(new, built, strict=True):
            p.id = r.pk
            readings.add(p)
            readings.built[r.pk] = r
        return enqueue(source=EvaluationSource.READING, ids=[r.pk for r in built], after_commit=False)
    entered_by_id = _entered_by_id(readings)
    with prepared_cursor() as cursor:
        cursor.execute(_RESERVE_SQL, {"n": len(new), "now": readings.now, "seq": _reading_sequence(cursor)},
                       prepare=True)
        rows = cursor.fetchall()
        batch: int = rows[0][1]
        for p, (pk, _) in zip(new, rows, strict=True):
            p.id = pk
            readings.add(p)
        with cursor.copy(_COPY_SQL) as copy:
            write = copy.write_row
            for p in new:
                write(_row(p, readings, entered_by_id))
    return batch
