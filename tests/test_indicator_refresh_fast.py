"""The refresh's shortcuts and the pages' kept views give the same figures as the definitions:

- the indicators computed in one pass (the alert rates by severity and rule kind, the response
  rates per timepoint) store the cells each indicator's own SQL gives;
- the reading days kept between refreshes (outcomes.reading_days) follow new readings, late
  readings, erroneous marks and a rebuild, and a lock not granted in time loses nothing;
- a page's suppressed figures are kept per refresh, filters, position and organisation, and a
  kept view shows what a computed one shows, in the request's language.

Hand-made data of tests/test_indicator_sql.py; PostgreSQL (DATABASE_URL), except the refusals on
other databases at the end."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone, translation

from monitoring.models import Reading
from outcomes.dashboard import IndicatorView, indicator_view, view_cache_key
from outcomes.indicators import INDICATORS, Filters
from outcomes.live import cells_from_rows
from outcomes.models import IndicatorCell, ReadingDay, ReadingDayMark
from outcomes.reading_days import reading_days_rebuild, reading_days_update
from outcomes.selectors import indicator_cells_precomputed
from outcomes.services import indicator_cells_refresh
from patients.models import CareTeam, Patient, Sex
from tests.test_indicator_sql import data  # noqa: F401 (the fixture)
from tests.test_indicators import NOW, TODAY, assert_same_cells, cast  # noqa: F401

CPH = ZoneInfo("Europe/Copenhagen")
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL path is PostgreSQL's")


def _sql_cells(code):
    from outcomes import indicator_sql

    return cells_from_rows(indicator_sql.cells_rows(INDICATORS[code], Filters(), TODAY))


def _days_from_readings():
    return {(r.patient_id, r.effective_at.astimezone(CPH).date())
            for r in Reading.objects.filter(erroneous_at__isnull=True)}


def _kept_days():
    return set(ReadingDay.objects.values_list("patient_id", "day"))


# --- batches ---------------------------------------------------------------------------------

@on_postgresql
def test_the_indicators_computed_in_one_pass_store_the_cells_of_their_own_sql(data):  # noqa: F811
    batched = [code for code, i in INDICATORS.items() if i.batch]
    assert {INDICATORS[c].batch for c in batched} == {"alert-rate", "response-rate"}
    assert len(batched) >= 13 + 4
    done = indicator_cells_refresh(today=TODAY)
    for code in batched:
        cells, _refresh = indicator_cells_precomputed(code=code, filters=Filters())
        assert len(cells) == done[code]
        assert_same_cells(_sql_cells(code), cells)


@on_postgresql
def test_a_batch_refreshed_alone_or_with_everything_gives_the_same_cells(data):  # noqa: F811
    indicator_cells_refresh(today=TODAY)
    every = sorted(IndicatorCell.objects.filter(indicator="alert-rate-red")
                   .values_list("care_team_id", "month", "sex", "age_band", "n_patients", "numerator", "denominator"))
    indicator_cells_refresh(codes=["alert-rate-red"], today=TODAY)
    alone = sorted(IndicatorCell.objects.filter(indicator="alert-rate-red")
                   .values_list("care_team_id", "month", "sex", "age_band", "n_patients", "numerator", "denominator"))
    assert every == alone and every
    # the other alert rates were not touched by refreshing one
    assert IndicatorCell.objects.filter(indicator="alert-rate-yellow").exists()


@on_postgresql
def test_an_unknown_indicator_refreshes_nothing_and_leaves_the_others(data):  # noqa: F811
    indicator_cells_refresh(codes=["response-rate-3m"], today=TODAY)
    before = IndicatorCell.objects.count()
    assert indicator_cells_refresh(codes=["no-such-indicator"], today=TODAY) == {}
    assert IndicatorCell.objects.count() == before > 0


# --- reading days ----------------------------------------------------------------------------

@on_postgresql
def test_reading_days_follow_new_and_late_readings_and_erroneous_marks(data):  # noqa: F811
    first = reading_days_update()
    assert first.scanned_from == 0 and first.mark_moved
    assert _kept_days() == _days_from_readings() and first.days_added == len(_kept_days())
    assert ReadingDayMark.objects.get().scanned_to == Reading.objects.order_by("-id").first().id

    patient = data[0]
    late_evening = datetime(2026, 10, 3, 23, 30, tzinfo=CPH)  # 22:30 UTC: the Danish day counts
    Reading.objects.create(patient=patient, measure="spo2", value=96, unit="%", source="device",
                           effective_at=late_evening, received_at=NOW)
    twice = datetime(2026, 10, 5, 8, 0, tzinfo=CPH)
    a = Reading.objects.create(patient=patient, measure="spo2", value=96, unit="%", source="device",
                               effective_at=twice, received_at=NOW)
    b = Reading.objects.create(patient=patient, measure="pulse", value=70, unit="/min", source="device",
                               effective_at=twice + timedelta(hours=9), received_at=NOW)
    second = reading_days_update()
    assert second.scanned_from == first.scanned_to and second.days_added == 2
    assert {(patient.pk, late_evening.date()), (patient.pk, twice.date())} <= _kept_days()
    assert _kept_days() == _days_from_readings()

    # one of the day's two readings marked wrong: the day stays; both: it goes
    Reading.objects.filter(pk=a.pk).update(erroneous_at=timezone.now())
    assert reading_days_update().days_removed == 0
    assert (patient.pk, twice.date()) in _kept_days()
    Reading.objects.filter(pk=b.pk).update(erroneous_at=timezone.now())
    assert reading_days_update().days_removed == 1
    assert _kept_days() == _days_from_readings()

    # nothing new: nothing changes; a rebuild from nothing gives the same days
    again = reading_days_update()
    assert (again.days_added, again.days_removed) == (0, 0)
    kept = _kept_days()
    assert reading_days_rebuild().scanned_from == 0
    assert _kept_days() == kept == _days_from_readings()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_lock_not_granted_in_time_adds_the_days_but_does_not_move_the_mark(data):  # noqa: F811
    reading_days_update()
    mark = ReadingDayMark.objects.get().scanned_to
    Reading.objects.create(patient=data[0], measure="spo2", value=96, unit="%", source="device",
                           effective_at=datetime(2026, 10, 20, 9, 0, tzinfo=CPH), received_at=NOW)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:  # a transaction that writes readings, open while the refresh runs
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(f"LOCK TABLE {Reading._meta.db_table} IN ROW EXCLUSIVE MODE")
                holding.set()
                release.wait(10)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        update = reading_days_update()
    finally:
        release.set()
        thread.join()
    assert not update.mark_moved and update.days_added == 1
    assert ReadingDayMark.objects.get().scanned_to == mark  # the same readings are read again next time
    assert _kept_days() == _days_from_readings()
    moved = reading_days_update()
    assert moved.mark_moved and moved.scanned_from == mark and moved.days_added == 0


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_bulk_upload_between_its_id_reservation_and_its_copy_keeps_the_mark_where_it_was(data):  # noqa: F811
    # The COPY path reserves its ids (and writes its inbox row) in one statement and writes the
    # readings in the next: in between it holds no lock on the readings table. Had the update
    # moved the mark past those ids then, the upload's readings would never be read.
    from monitoring.ingest import storage

    reading_days_update()
    mark = ReadingDayMark.objects.get().scanned_to
    holding, release = threading.Event(), threading.Event()
    reserved: list[int] = []
    failed: list[BaseException] = []

    def uploader() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(storage._RESERVE_SQL, {"n": 3, "now": NOW,
                                                      "seq": storage._reading_sequence(cursor.cursor)})
                reserved.extend(row[0] for row in cursor.fetchall())
                holding.set()
                release.wait(10)
                cursor.execute("ROLLBACK")
        except BaseException as exc:  # shown by the assertion below instead of a silent thread
            failed.append(exc)
            holding.set()
        finally:
            other.close()

    thread = threading.Thread(target=uploader)
    thread.start()
    try:
        assert holding.wait(10) and not failed, failed
        # A reading stored after the reservation: the highest id is now past the reserved ones.
        Reading.objects.create(patient=data[0], measure="spo2", value=95, unit="%", source="device",
                               effective_at=datetime(2026, 10, 21, 9, 0, tzinfo=CPH), received_at=NOW)
        update = reading_days_update()
    finally:
        release.set()
        thread.join()
    assert reserved and update.scanned_to > max(reserved)
    assert not update.mark_moved  # the upload's ids were not final yet
    assert ReadingDayMark.objects.get().scanned_to == mark
    assert _kept_days() == _days_from_readings()


@on_postgresql
def test_adherence_from_the_kept_days_equals_adherence_from_the_readings(data):  # noqa: F811
    indicator_cells_refresh(today=TODAY)
    cells, _refresh = indicator_cells_precomputed(code="reading-adherence", filters=Filters())
    assert_same_cells(_sql_cells("reading-adherence"), cells)
    # a day marked wrong after the refresh leaves at the next one
    marked = Reading.objects.filter(patient=data[0]).order_by("effective_at").first()
    Reading.objects.filter(patient=data[0], effective_at__date=marked.effective_at.date()).update(
        erroneous_at=timezone.now())
    indicator_cells_refresh(today=TODAY)
    cells, _refresh = indicator_cells_precomputed(code="reading-adherence", filters=Filters())
    assert_same_cells(_sql_cells("reading-adherence"), cells)


# --- kept views ------------------------------------------------------------------------------

def _shown(view):
    tables = [view.quarter_table()] if view.national_only else view.tables()
    return [(t.key, r.label, r.shown, r.small, r.figure.n_patients, r.figure.value, r.figure.median)
            for t in tables for r in [*t.rows, t.total]] + [(r.label, r.shown) for r in view.breadcrumbs()]


@on_postgresql
@pytest.mark.parametrize("code", ["response-rate-3m", "prom-change-phq-9-3m", "red-ack-hours", "alert-rate-all"])
def test_a_kept_view_shows_what_a_computed_one_shows(data, code):  # noqa: F811
    indicator_cells_refresh(today=TODAY)
    indicator = INDICATORS[code]
    team = CareTeam.objects.get(name="Team N")
    for position in ({}, {"region": team.region}, {"region": team.region, "department": team.department},
                     {"region": team.region, "department": team.department, "team_id": team.pk}):
        for national_only in (False, True):
            if national_only and position:
                continue
            computed = indicator_view(indicator, Filters(), national_only=national_only, **position)
            kept = indicator_view(indicator, Filters(), national_only=national_only, **position)
            assert not computed.from_cache and kept.from_cache
            assert _shown(kept) == _shown(computed)
            assert (kept.hidden, kept.primary, kept.position) == (computed.hidden, computed.primary,
                                                                  computed.position)
            with override_settings(OUTCOMES_VIEW_CACHE_SECONDS=0):
                fresh = indicator_view(indicator, Filters(), national_only=national_only, **position)
            assert not fresh.from_cache and _shown(fresh) == _shown(kept)


@on_postgresql
def test_a_kept_view_follows_the_refresh_the_filters_the_organisation_and_the_language(data):  # noqa: F811
    indicator = INDICATORS["response-rate-3m"]
    indicator_cells_refresh(codes=[indicator.code], today=TODAY)
    assert not indicator_view(indicator, Filters()).from_cache
    assert indicator_view(indicator, Filters()).from_cache
    assert not indicator_view(indicator, Filters(sex=Sex.MALE)).from_cache  # other filters: its own view

    # labels in the request's language, from the same kept figures
    with translation.override("da"):
        danish = indicator_view(indicator, Filters())
    with translation.override("en"):
        english = indicator_view(indicator, Filters())
    assert danish.from_cache and english.from_cache
    assert (danish.national().label, english.national().label) == ("Hele landet", "All of Denmark")

    # a withdrawal and a refresh: a new view with one patient fewer
    before = indicator_view(indicator, Filters()).national().figure.n_patients
    Patient.objects.filter(pk=data[2].pk).update(secondary_use_withdrawn_at=NOW)
    indicator_cells_refresh(codes=[indicator.code], today=TODAY)
    after = indicator_view(indicator, Filters())
    assert not after.from_cache and after.national().figure.n_patients == before - 1

    # a team moved to another department: the tree changed, so did the key
    team = CareTeam.objects.get(name="Team N")
    team.department = "Onko N2"
    team.save()
    moved = indicator_view(indicator, Filters(), region=team.region, department="Onko N2")
    assert not moved.from_cache and moved.current().label == "Onko N2"


@on_postgresql
def test_a_view_computed_live_or_without_a_refresh_time_is_never_kept(data):  # noqa: F811
    indicator = INDICATORS["response-rate-3m"]
    indicator_cells_refresh(codes=[indicator.code], today=TODAY)
    live_period = Filters(start_from=TODAY.replace(day=3))  # not whole months: computed from the rows
    assert not indicator_view(indicator, live_period).from_cache
    assert not indicator_view(indicator, live_period).from_cache
    assert not IndicatorView(indicator, Filters(), today=TODAY, in_db=True).from_cache
    assert not IndicatorView(indicator, Filters(), today=TODAY, in_db=True).from_cache


def test_the_key_of_a_kept_view_changes_with_everything_it_depends_on(db):
    indicator, other = INDICATORS["response-rate-3m"], INDICATORS["response-rate-6m"]
    at = datetime(2026, 12, 1, 3, 0, tzinfo=CPH)
    team = CareTeam(pk=1, name="A", department="D", region="1082")
    base = (indicator, Filters(), at, TODAY, {1: team}, ("", "", None), False)
    key = view_cache_key(*base)
    assert key and key == view_cache_key(*base) and len(key) < 250
    changes = [(0, other), (1, Filters(sex=Sex.MALE)), (2, at + timedelta(microseconds=1)),
               (3, TODAY - timedelta(days=1)), (4, {1: CareTeam(pk=1, name="A", department="E", region="1082")}),
               (4, {}), (5, ("1082", "", None)), (6, True)]
    for k, value in changes:
        changed = list(base)
        changed[k] = value
        assert view_cache_key(*changed) != key, k
    # a team's name is only a label: the same kept figures
    assert view_cache_key(*base[:4], {1: CareTeam(pk=1, name="B", department="D", region="1082")},
                          *base[5:]) == key
    with override_settings(OUTCOMES_MIN_PATIENTS=10):
        assert view_cache_key(*base) != key
    with override_settings(OUTCOMES_VIEW_CACHE_SECONDS=0):
        assert view_cache_key(*base) is None


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the refusal elsewhere")
def test_reading_days_are_kept_on_postgresql_only(db):
    with pytest.raises(NotImplementedError):
        reading_days_update()


@on_postgresql
def test_after_a_refresh_the_national_pages_and_the_front_pages_are_made_ahead(data):  # noqa: F811
    from outcomes.services import indicator_views_warm
    from patients.models import Program

    indicator_cells_refresh(today=TODAY)
    keyed = [i for i in INDICATORS.values() if i.key]
    programmes = list(Program.objects.values_list("pk", flat=True))
    assert len(programmes) >= 2
    assert indicator_views_warm() == len(INDICATORS) + len(keyed) * (1 + len(programmes))
    for indicator in INDICATORS.values():
        assert indicator_view(indicator, Filters()).from_cache
    assert all(indicator_view(i, Filters(), national_only=True).from_cache for i in keyed)
    # the front page filtered to a programme, but not that programme's indicator pages
    assert all(indicator_view(i, Filters(program_id=p), national_only=True).from_cache
               for i in keyed for p in programmes)
    assert not indicator_view(keyed[0], Filters(program_id=programmes[0])).from_cache
    assert indicator_views_warm() == 0  # all kept already
    assert indicator_views_warm(codes=["no-such-indicator"]) == 0
    team = CareTeam.objects.get(name="Team N")  # a region's page is made when first asked for
    assert not indicator_view(keyed[0], Filters(), region=team.region).from_cache


@pytest.mark.skipif(connection.vendor == "postgresql", reason="elsewhere nothing is kept")
def test_nothing_is_made_ahead_where_views_are_not_kept(db):
    from outcomes.services import indicator_views_warm

    assert indicator_views_warm() == 0


@on_postgresql
def test_a_deleted_patients_reading_days_go_with_the_patient(data, cast):  # noqa: F811
    from tests.test_indicators import _patient

    patient = _patient(cast)
    Reading.objects.create(patient=patient, measure="spo2", value=96, unit="%", source="device",
                           effective_at=datetime(2026, 10, 20, 9, 0, tzinfo=CPH), received_at=NOW)
    reading_days_update()
    assert ReadingDay.objects.filter(patient=patient).count() == 1
    Patient.objects.filter(pk=patient.pk).delete()
    assert not ReadingDay.objects.filter(patient_id=patient.pk).exists()
    assert _kept_days() == _days_from_readings()


@on_postgresql
def test_the_front_pages_national_figures_summed_in_the_database_equal_the_full_trees_root(data):  # noqa: F811
    indicator_cells_refresh(today=TODAY)
    with override_settings(OUTCOMES_VIEW_CACHE_SECONDS=0):
        for indicator in INDICATORS.values():
            full = indicator_view(indicator, Filters())
            quick = indicator_view(indicator, Filters(), national_only=True)
            assert quick.in_db and full.in_db
            assert (quick.national().shown, quick.national().figure) == (full.national().shown,
                                                                         full.national().figure)
            assert [(r.label, r.shown, r.figure.n_patients) for r in quick.quarter_table().rows] == [
                (r.label, r.shown, r.figure.n_patients) for r in full.quarter_table().rows]


def test_the_view_keeping_and_the_refresh_interval_are_real_settings():
    # Both are documented in docs/production.md; until the review they were read with getattr
    # defaults from settings that never defined them, so setting them in the environment did nothing.
    from django.conf import settings

    from outcomes.dashboard import view_cache_seconds

    assert settings.CELERY_BEAT_SCHEDULE["outcomes-refresh-indicator-cells"]["schedule"] == \
        settings.OUTCOMES_REFRESH_SECONDS
    with override_settings(OUTCOMES_VIEW_CACHE_SECONDS=1234):
        assert view_cache_seconds() == 1234
