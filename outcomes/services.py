"""Writes for cohorts. Each change is validated in full (the same rules whichever path calls)
and audited."""

from typing import Any

from django.db import transaction

from audit.models import Action
from audit.services import audit_record
from outcomes.models import Cohort


@transaction.atomic
def cohort_save(*, cohort: Cohort, user: Any, request: Any = None) -> Cohort:
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
def cohort_delete(*, cohort: Cohort, user: Any, request: Any = None) -> None:
    # The audit trail has no "delete" action; a deletion is the last update of the cohort.
    audit_record(user=user, action=Action.UPDATE, resource=f"Cohort/{cohort.pk} deleted ({cohort.name})",
                 request=request)
    cohort.delete()


# --- precomputed indicator aggregates (issue 23) ------------------------------------------------

def indicator_cells_refresh(*, codes: list[str] | None = None, today: Any = None) -> dict[str, int]:
    """Rebuild the precomputed cells of every indicator (or those named) from the live rows.

    One read of the rows all indicators share (outcomes.indicators.Dataset), then per indicator
    one transaction that locks its IndicatorRefresh row, deletes its cells and inserts the new
    ones: readers see the old figures or the new, never half. Running it twice at once makes
    the second wait for the first and then do the same work again — harmless. Returns the
    number of cells per indicator."""
    import time

    from django.utils import timezone

    from outcomes.indicators import INDICATORS, Dataset, Filters, cells_from_units, episodes_in_scope
    from outcomes.models import IndicatorCell, IndicatorRefresh

    today = today or timezone.localdate()
    dataset = Dataset(episodes_in_scope(Filters(), today), today)
    done: dict[str, int] = {}
    for code, indicator in INDICATORS.items():
        if codes and code not in codes:
            continue
        started = time.perf_counter()
        cells = cells_from_units(indicator.units(dataset))
        rows = [IndicatorCell(indicator=code, program_id=c.program_id, care_team_id=c.team_id, month=c.month,
                              sex=c.sex, age_band=c.age_band, n_patients=c.n_patients, n_units=c.n_units,
                              numerator=c.numerator, denominator=c.denominator, values=c.values,
                              categories=c.categories) for c in cells]
        with transaction.atomic():
            IndicatorRefresh.objects.get_or_create(indicator=code)
            IndicatorRefresh.objects.select_for_update().get(indicator=code)
            IndicatorCell.objects.filter(indicator=code).delete()
            IndicatorCell.objects.bulk_create(rows, batch_size=5000)
            IndicatorRefresh.objects.filter(indicator=code).update(
                refreshed_at=timezone.now(), as_of=today, cells=len(rows),
                duration_ms=round(1000 * (time.perf_counter() - started)))
        done[code] = len(rows)
    return done
