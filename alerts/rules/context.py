"""What a rule may know beyond the event in front of it: the patient's history, read from the
database as of a moment. Live evaluation uses now; back-testing (alerts.backtest) replays past
events with ``as_of`` set to each event's own time, so that a rule never sees the future.

Erroneous readings are never part of the history (they are excluded from rules and outcomes).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from monitoring.models import Reading


@dataclass(frozen=True, slots=True)
class PastReading:
    id: int
    measure: str
    value: Decimal
    value2: Decimal | None
    effective_at: datetime


class Context:
    def __init__(self, *, now: datetime, as_of: datetime | None = None) -> None:
        self.now = now
        # Readings received after this moment are not visible (back-testing); None = all.
        self.as_of = as_of

    def readings(self, patient_id: Any, measure: str, *, since: datetime, until: datetime) -> list[PastReading]:
        """The patient's non-erroneous readings of ``measure`` measured in [since, until],
        oldest first. A late upload counts at the time it was measured."""
        rows = Reading.objects.filter(
            patient_id=patient_id, measure=measure, effective_at__gte=since, effective_at__lte=until,
            erroneous_at=None,
        )
        if self.as_of is not None:
            rows = rows.filter(received_at__lte=self.as_of)
        return [
            PastReading(*row)
            for row in rows.order_by("effective_at", "id").values_list(
                "id", "measure", "value", "value2", "effective_at"
            )
        ]
