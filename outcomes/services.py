"""Writes for cohorts. Each change is validated in full (the same rules whichever path calls)
and audited."""

from datetime import date
from typing import TYPE_CHECKING

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit.models import Action
from audit.services import audit_record
from outcomes.models import Cohort

if TYPE_CHECKING:
    from outcomes.indicators import Dataset, Indicator


@transaction.atomic
def cohort_save(*, cohort: Cohort, user: User, request: HttpRequest | None = None) -> Cohort:
    """Create or update a cohort. Raises ValidationError (per field) and stores nothing when a
    criterion is invalid."""
    creating = cohort.pk is None
    if creating:
        cohort.created_by = user
    cohort.full_clean()
    cohort.save()
    audit_record(user=user, action=Action.CREATE if creating else Action.UPDATE,
                 resource=f"Cohort/{cohort.pk}", request=request)
    return cohort


@transaction.atomic
def cohort_delete(*, cohort: Cohort, user: User, request: HttpRequest | None = None) -> None:
    # The audit trail has no "delete" action; a deletion is the last update of the cohort.
    audit_record(user=user, action=Action.UPDATE, resource=f"Cohort/{cohort.pk} deleted ({cohort.name})",
                 request=request)
    cohort.delete()


# --- precomputed indicator aggregates (issue 23) ------------------------------------------------

def indicator_cells_refresh(*, codes: list[str] | None = None, today: date | None = None,
                            timings: dict[str, float] | None = None) -> dict[str, int]:
    """Rebuild the precomputed cells of every indicator (or those named) from the live rows.

    On PostgreSQL the rows never leave the database: first the kept reading days are brought up
    to date (outcomes.reading_days), then the rows several indicators read — the episodes in
    scope, their alerts, their responses' scores — are made once as temporary tables, and each
    indicator is one INSERT … SELECT over them (outcomes.indicator_sql), or one per batch of
    indicators computed in one pass (Indicator.batch: the alert rates by severity and rule kind).
    Elsewhere one read of the rows all indicators share (outcomes.indicators.Dataset) and the
    Python definitions. Per indicator (per batch) one transaction locks its IndicatorRefresh
    rows, deletes its cells and inserts the new ones: readers see the old figures or the new,
    never half. Running it twice at once makes the second wait for the first and then do the
    same work again — harmless. Returns the number of cells per indicator; ``timings`` (when
    given) gets the seconds of each step: the shared rows, each indicator or batch."""

    import time

    from django.db import connection
    from django.utils import timezone

    from outcomes.indicators import INDICATORS, Dataset, Filters, episodes_in_scope

    today = today or timezone.localdate()
    in_sql = connection.vendor == "postgresql"
    dataset = None if in_sql else Dataset(episodes_in_scope(Filters(), today), today)
    timings = {} if timings is None else timings
    done: dict[str, int] = {}
    if in_sql:
        from outcomes.indicator_sql import shared_tables_create
        from outcomes.reading_days import reading_days_update
        from questionnaires.library.mid import MIDS

        if codes is None or "reading-adherence" in codes:
            started = time.perf_counter()
            reading_days_update()
            timings["reading days kept"] = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor:
            # One big read per indicator: JIT compiling costs more than it saves here, and the
            # sorts and hashes fit in memory instead of spilling to disk.
            cursor.execute("SET jit = off; SET work_mem = '256MB'")
            shared_tables_create(cursor, today, score_codes=[m.score_code for m in MIDS.values()])
        timings["shared rows"] = time.perf_counter() - started
    try:
        chosen = [i for code, i in INDICATORS.items() if not codes or code in codes]
        batches: dict[str, list[Indicator]] = {}
        for indicator in chosen:
            if in_sql and indicator.batch:
                batches.setdefault(indicator.batch, []).append(indicator)
            else:
                started = time.perf_counter()
                _refresh_one(indicator, today, dataset, done)
                timings[indicator.code] = time.perf_counter() - started
        for name, members in batches.items():
            started = time.perf_counter()
            _refresh_batch(name, members, today, done)
            timings[f"batch {name} ({len(members)} indicators)"] = time.perf_counter() - started
    finally:
        if in_sql:
            from outcomes.indicator_sql import shared_tables_drop

            with connection.cursor() as cursor:
                shared_tables_drop(cursor)
                cursor.execute("RESET jit; RESET work_mem")
    return done


def _refresh_one(indicator: "Indicator", today: date, dataset: "Dataset | None", done: dict[str, int]) -> None:
    import time

    from django.db import connection
    from django.utils import timezone

    from outcomes.indicators import Filters, cells_from_units
    from outcomes.live import cells_insert_sql
    from outcomes.models import IndicatorCell, IndicatorRefresh

    code = indicator.code
    started = time.perf_counter()
    rows: list[IndicatorCell] = []
    if dataset is not None:
        rows = [IndicatorCell(indicator=code, program_id=c.program_id, care_team_id=c.team_id, month=c.month,
                              sex=c.sex, age_band=c.age_band, n_patients=c.n_patients, n_units=c.n_units,
                              numerator=c.numerator, denominator=c.denominator, values=c.values,
                              categories=c.categories) for c in cells_from_units(indicator.units(dataset))]
    with transaction.atomic():
        IndicatorRefresh.objects.get_or_create(indicator=code)
        IndicatorRefresh.objects.select_for_update().get(indicator=code)
        IndicatorCell.objects.filter(indicator=code).delete()
        if dataset is None:
            from outcomes.indicator_sql import params

            with connection.cursor() as cursor:
                cursor.execute(cells_insert_sql(indicator, shared=True), {**params(Filters(), today), "code": code})
                n = cursor.rowcount
        else:
            IndicatorCell.objects.bulk_create(rows, batch_size=5000)
            n = len(rows)
        IndicatorRefresh.objects.filter(indicator=code).update(
            refreshed_at=timezone.now(), as_of=today, cells=n,
            duration_ms=round(1000 * (time.perf_counter() - started)))
    done[code] = n


def _refresh_batch(name: str, indicators: list["Indicator"], today: date, done: dict[str, int]) -> None:
    """The cells of a batch of indicators in one pass and one transaction (PostgreSQL). Each
    indicator's refresh records the batch's time, which it shared."""
    import time

    from django.db import connection
    from django.utils import timezone

    from outcomes.indicators import Filters
    from outcomes.live import batch_insert_sql
    from outcomes.models import IndicatorCell, IndicatorRefresh

    codes = [i.code for i in indicators]
    started = time.perf_counter()
    with transaction.atomic():
        for code in sorted(codes):  # one order for every refresh: two at once queue, never deadlock
            IndicatorRefresh.objects.get_or_create(indicator=code)
        list(IndicatorRefresh.objects.select_for_update().filter(indicator__in=codes).order_by("indicator"))
        IndicatorCell.objects.filter(indicator__in=codes).delete()
        from outcomes.indicator_sql import params

        with connection.cursor() as cursor:
            # The cells per indicator counted as they are written (counting them afterwards read
            # the 363,000 new rows again: 3-4 s).
            cursor.execute(f"WITH written AS ({batch_insert_sql(name, indicators)} RETURNING indicator) "  # noqa: S608
                           f"SELECT indicator, count(*) FROM written GROUP BY indicator", params(Filters(), today))
            counts = dict(cursor.fetchall())
        now, ms = timezone.now(), round(1000 * (time.perf_counter() - started))
        for code in codes:
            IndicatorRefresh.objects.filter(indicator=code).update(
                refreshed_at=now, as_of=today, cells=counts.get(code, 0), duration_ms=ms)
            done[code] = counts.get(code, 0)


def indicator_views_warm(*, codes: list[str] | None = None) -> int:
    """After a refresh: sum and suppress the views most asked for — every indicator's national
    page without filters, the front page's national figures, and the front page filtered to each
    programme (quality staff mostly look at their own programme; at 100,000 patients such a front
    page took ~5 s to make) — so that the first visitor after a refresh finds them kept
    (outcomes.dashboard.view_cache_key) instead of computing them. PostgreSQL only (elsewhere
    nothing is kept); returns the number of views made."""
    from django.db import router

    from outcomes import aggregates
    from outcomes.dashboard import indicator_view
    from outcomes.indicators import INDICATORS, Filters
    from outcomes.models import IndicatorCell
    from outcomes.selectors import indicator_refreshes_fitting
    from patients.models import Program

    if not aggregates.in_database(router.db_for_read(IndicatorCell) or "default"):
        return 0
    refreshes = indicator_refreshes_fitting(filters=Filters())
    wanted = [i for code, i in INDICATORS.items() if (not codes or code in codes) and code in refreshes]
    front_page = [i for i in wanted if i.key]
    programmes = [Filters(program_id=pk) for pk in Program.objects.order_by("pk").values_list("pk", flat=True)]
    views = [(i, Filters(), False) for i in wanted] + [
        (i, filters, True) for filters in (Filters(), *programmes) for i in front_page]
    made = 0
    for indicator, filters, national_only in views:
        view = indicator_view(indicator, filters, national_only=national_only, refreshes=refreshes)
        made += 0 if view.from_cache or not view.in_db else 1
    return made
