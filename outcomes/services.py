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
    from outcomes.indicators import Dataset


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

def indicator_cells_refresh(*, codes: list[str] | None = None, today: date | None = None) -> dict[str, int]:
    """Rebuild the precomputed cells of every indicator (or those named) from the live rows.

    On PostgreSQL each indicator is one INSERT … SELECT (outcomes.indicator_sql): the rows never
    leave the database. Elsewhere one read of the rows all indicators share
    (outcomes.indicators.Dataset) and the Python definitions. Per indicator one transaction
    locks its IndicatorRefresh row, deletes its cells and inserts the new ones: readers see the
    old figures or the new, never half. Running it twice at once makes the second wait for the
    first and then do the same work again — harmless. Returns the number of cells per indicator."""

    from django.db import connection
    from django.utils import timezone

    from outcomes.indicators import Dataset, Filters, episodes_in_scope

    today = today or timezone.localdate()
    in_sql = connection.vendor == "postgresql"
    dataset = None if in_sql else Dataset(episodes_in_scope(Filters(), today), today)
    done: dict[str, int] = {}
    if in_sql:
        from outcomes.indicator_sql import shared_tables_create

        with connection.cursor() as cursor:
            # One big read per indicator: JIT compiling costs more than it saves here, and the
            # sorts and hashes fit in memory instead of spilling to disk.
            cursor.execute("SET jit = off; SET work_mem = '256MB'")
            shared_tables_create(cursor, today)
    try:
        _refresh_each(codes, today, dataset, done)
    finally:
        if in_sql:
            from outcomes.indicator_sql import shared_tables_drop

            with connection.cursor() as cursor:
                shared_tables_drop(cursor)
                cursor.execute("RESET jit; RESET work_mem")
    return done


def _refresh_each(codes: list[str] | None, today: date, dataset: "Dataset | None",
                  done: dict[str, int]) -> None:
    import time

    from django.db import connection
    from django.utils import timezone

    from outcomes.indicators import INDICATORS, Filters, cells_from_units
    from outcomes.live import cells_insert_sql
    from outcomes.models import IndicatorCell, IndicatorRefresh

    for code, indicator in INDICATORS.items():
        if codes and code not in codes:
            continue
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
                    cursor.execute(cells_insert_sql(indicator, shared=True),
                                   {**params(Filters(), today), "code": code})
                    n = cursor.rowcount
            else:
                IndicatorCell.objects.bulk_create(rows, batch_size=5000)
                n = len(rows)
            IndicatorRefresh.objects.filter(indicator=code).update(
                refreshed_at=timezone.now(), as_of=today, cells=n,
                duration_ms=round(1000 * (time.perf_counter() - started)))
        done[code] = n
